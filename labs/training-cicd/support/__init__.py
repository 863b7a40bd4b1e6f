"""Lab support code shared by provisioning and the checks (never the candidate's to edit)."""
