"""ACE-Step music generation as REAPER actions (Python ReaScript through python-reapy).

The actions (actions.py) ask for a prompt, hand the request to the local worker
through acestep_core.client and return to REAPER at once; a defer loop (loops.py)
then takes one short step per tick (generation.py) until the music is on the
timeline (project.py), in one undo block. The same code runs inside REAPER and from
outside it through reapy's distant API.

Imports only the standard library, python-reapy and acestep_core's stdlib modules.
"""

__all__ = ["actions"]
