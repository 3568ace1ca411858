"""The pure search engine: plain data in, plain data out, no Django import anywhere below here."""
