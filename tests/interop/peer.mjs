// A charging station built on ocpp-rpc (a third-party OCPP-J library, strict schema validation of every call
// and response in both directions), used by tests/interop/test_interop.py against v2gtwin's central system.
// Usage: node peer.mjs <ws-url> <station-id> [password]
// Prints one JSON object per line: {"event": ..., ...}. Exits 0 after boot, heartbeat, an accepted charging
// profile and one meter value; exits 1 on any error (including a schema violation by the central system).
import { RPCClient } from 'ocpp-rpc';

const [endpoint, identity, password] = process.argv.slice(2);
const say = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

const client = new RPCClient({
  endpoint,
  identity,
  password: password || undefined,
  protocols: ['ocpp2.0.1'],
  strictMode: true,
  reconnect: false,
});

let gotProfile;
const profile = new Promise((resolve) => { gotProfile = resolve; });
client.handle('SetChargingProfile', ({ params }) => {
  say({ event: 'SetChargingProfile', params });
  gotProfile(params);
  return { status: 'Accepted' };
});
client.handle(({ method }) => {
  say({ event: 'unhandled', method });
  return {};
});

const timer = setTimeout(() => { say({ event: 'error', message: 'timed out' }); process.exit(1); }, 30000);
try {
  await client.connect();
  say({ event: 'connected', protocol: client.protocol });
  const boot = await client.call('BootNotification', {
    reason: 'PowerUp',
    chargingStation: { model: 'interop-peer', vendorName: 'ocpp-rpc' },
  });
  say({ event: 'BootNotification', response: boot });
  const hb = await client.call('Heartbeat', {});
  say({ event: 'Heartbeat', response: hb });
  await client.call('StatusNotification', {
    timestamp: new Date().toISOString(), connectorStatus: 'Occupied', evseId: 1, connectorId: 1,
  });
  say({ event: 'ready' });
  const params = await profile;
  const limit = params.chargingProfile.chargingSchedule[0].chargingSchedulePeriod[0].limit;
  const mv = await client.call('MeterValues', {
    evseId: 1,
    meterValue: [{
      timestamp: new Date().toISOString(),
      sampledValue: [{ value: limit, measurand: 'Power.Active.Import', unitOfMeasure: { unit: 'W' } }],
    }],
  });
  say({ event: 'MeterValues', response: mv });
  await client.close({ code: 1000 });
  clearTimeout(timer);
  say({ event: 'done' });
} catch (err) {
  say({ event: 'error', message: String(err && err.message || err), details: err && err.details });
  process.exit(1);
}
