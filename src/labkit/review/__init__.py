"""`labkit review`: the hiring team's side — unpack, verify, re-provision, grade sandboxed, report."""
