"""The service benchmark: one aiohttp feed service per mode, a Redis store
filled from the synthetic marketplace, a load generator and the
measurements. `bench/run_all.py` drives it; `bench/profile.py` profiles it.

Kept import-light on purpose: the python+ppe workers import this package.
"""
