"""Plumbing every stage shares: the user error (``errors``), the stage runner and its summary line
(``stage``), atomic io (``io``), params (``params``), the progress bar (``progress``), torch's
device, threads and seeding (``runtime``), the HTTP retry rule (``retry``), the run environment
record (``environment``) and which process of a torchrun group this is (``distributed``)."""
