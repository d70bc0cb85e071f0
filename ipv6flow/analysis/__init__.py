"""What figures mean beyond per-frame classification: NAT64/DNS64 and DNS."""
