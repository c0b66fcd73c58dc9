"""Frozen baselines: the SIW generator's forward and the SOF march as they were when issue 21 was
filed (commit ad6c3ed), so that benchmark cases can time today's code against them in the same run
(interleaved) and check that outputs agree. See :mod:`.siw` and :mod:`.sof`; never optimise these.
"""
