"""Building the function's package, for `local` (run it here) and for `package`/`deploy` (ship it).

Nothing here talks to AWS. `plan` reads which functions to build; `stage` lays out the code, the
runtime part and the dependencies (`wheels`: binary wheels for the Lambda platform; `prune`,
`zipbuild`: what never runs on Lambda, the reproducible zip); `zips` builds them; `folder` keeps the
build folder (`lambdavision build`) and rebuilds only what changed; `host` and `runtime_client` let
this machine run what was built; `runtimes` knows Lambda's Python runtimes.
"""
