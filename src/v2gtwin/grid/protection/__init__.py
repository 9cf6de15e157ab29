"""Fault currents and overcurrent protection of radial feeders with V2G aggregators.

Modules: :mod:`~v2gtwin.grid.protection.faults` (three-phase fault currents at every bus, IEC 60909
superposition with inverter current sources), :mod:`~v2gtwin.grid.protection.relays` (IEC 60255-151 and IEEE
C37.112 curves, operation on time-varying currents, generator versus inverter fault current in time),
:mod:`~v2gtwin.grid.protection.devices` (devices as data, zones, the default scheme),
:mod:`~v2gtwin.grid.protection.coordination` (currents through every device, CTI, sympathetic tripping,
blinding), :mod:`~v2gtwin.grid.protection.search` (proposed settings, the fleet size at which coordination first
fails) and :mod:`~v2gtwin.grid.protection.analysis` (the study of a scenario's feeder).
"""
