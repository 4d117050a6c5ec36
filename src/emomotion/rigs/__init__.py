"""Reading unseen rigs: joint names, hierarchy and rest geometry -> SMPL-22, units and scale, bind poses.

One concept per module: :mod:`.names` (name vocabularies), :mod:`.mapping` (what each SMPL joint
comes from, by name, path and geometry), :mod:`.repair` (zero-length bones, synthesised toes),
:mod:`.units` (units and scale), :mod:`.poses` (bind poses, implausible speeds).
"""
