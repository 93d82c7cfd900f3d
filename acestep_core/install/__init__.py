"""Installers for the hosts: the Blender extension and the REAPER actions (standard library only)."""
