"""The schema designer's engine: versions in the database and the hot reload.

`versions` stores, plans, applies and re-applies schema versions; `reload`
swaps every process's app for the newest version without a restart.
"""
