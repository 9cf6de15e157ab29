"""Markets: TOU vs RTP welfare, Stackelberg aggregator pricing, newsvendor regulation bids."""
