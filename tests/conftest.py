import os

# The suite never touches the network: a missing file must be named, not downloaded.
os.environ.setdefault("SAFLEX_OFFLINE", "1")
