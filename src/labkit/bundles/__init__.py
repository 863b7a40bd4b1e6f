"""Archives that move a lab between people: the candidate bundle (export), the submission
(submit), and the reviewer's safe unpacking of it (unpack)."""
