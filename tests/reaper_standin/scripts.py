"""Python ReaScripts as REAPER runs them: in one shared `__main__`, on the main thread,
with defer/atexit queues that a test (or the stand-in's main loop) pumps.

- A script's body runs to the end; code passed to RPR_defer runs once on the next
  cycle of the main loop (REAPER runs about 30 a second). A script whose deferred
  code stops re-deferring has finished; its atexit code then runs.
- A script that finishes without deferring and changed the project without an undo
  point of its own gets one named after it, as REAPER does for actions. Deferred
  scripts get none ("no undo point will be automatically created").
- Re-running a script that is still running asks the user (REAPER's task control
  dialog: terminate / new instance / abort) unless set_action_options chose.
- An exception ends the script and lands in the ReaScript console, as in REAPER.
"""

from __future__ import annotations

import os
import sys
import traceback
import types
from dataclasses import dataclass, field

from .model import ReaperApp, ScriptAction, StandInFault


@dataclass
class ScriptInstance:
    path: str
    action: ScriptAction | None = None
    pending: list[str] = field(default_factory=list)
    at_exit: list[str] = field(default_factory=list)
    options: int = 0
    deferred_ever: bool = False
    finished: bool = False


@dataclass
class ScriptError:
    path: str
    traceback: str


class ScriptHost:
    def __init__(self, app: ReaperApp, main: types.ModuleType):
        self.app = app
        self.main = main
        self.instances: list[ScriptInstance] = []
        self.current: ScriptInstance | None = None
        self.console = ScriptInstance("<console>")  # calls made outside any script
        self.errors: list[ScriptError] = []
        self.task_control_answers: list[str] = []
        self.cycles = 0
        app.scripts = self

    # -- called through reaper_python -------------------------------------------------

    def defer(self, code: str) -> None:
        instance = self.current or self.console
        instance.pending.append(str(code))
        instance.deferred_ever = True
        if instance is self.console and instance not in self.instances:
            self.instances.append(instance)

    def atexit(self, code: str) -> None:
        (self.current or self.console).at_exit.append(str(code))

    def set_action_options(self, flag: int) -> None:
        instance = self.current
        if instance is None:
            return
        instance.options |= flag & 3
        if instance.action is not None and flag & 12:
            self.app.toggle_states[(instance.action.section, instance.action.command_id)] = 1 if flag & 4 else 0

    # -- running -------------------------------------------------------------------------

    def running(self, path: str | None = None) -> list[ScriptInstance]:
        return [i for i in self.instances if not i.finished and (path is None or i.path == path)]

    def answer_task_control(self, choice: str) -> None:
        """Queue the answer to "script already running": terminate, new or abort."""
        assert choice in ("terminate", "new", "abort")
        self.task_control_answers.append(choice)

    def run_action(self, action: ScriptAction) -> ScriptInstance | None:
        already = self.running(action.path)
        if already:
            options = already[-1].options
            if options & 1:
                choice = "terminate" if not options & 2 else "relaunch"
            elif self.task_control_answers:
                choice = self.task_control_answers.pop(0)
            else:
                raise StandInFault(f"{os.path.basename(action.path)} is still running; REAPER asks the user "
                                   "(terminate / new instance / abort) and the test queued no answer")
            if choice in ("terminate", "relaunch"):
                for instance in already:
                    self.terminate(instance)
                if choice == "terminate":
                    return None
            elif choice == "abort":
                return None
        return self.run_file(action.path, action)

    def run_file(self, path: str, action: ScriptAction | None = None) -> ScriptInstance:
        instance = ScriptInstance(os.path.abspath(path), action)
        self.instances.append(instance)
        project = self.app.current
        changes, points = project.change_count, len(project.undo_points)
        try:
            with open(instance.path, encoding="utf-8") as handle:
                code = compile(handle.read(), instance.path, "exec")
        except (OSError, SyntaxError):
            self._fail(instance)
            return instance
        namespace = self.main.__dict__
        namespace["__file__"] = instance.path
        saved_argv = sys.argv
        sys.argv = [instance.path]
        try:
            self._run(instance, lambda: exec(code, namespace))
        finally:
            sys.argv = saved_argv
        if not instance.pending and not instance.finished:
            self._finish(instance)
        if (not instance.deferred_ever and project.change_count != changes
                and len(project.undo_points) == points and project in self.app.projects):
            name = action.description if action else os.path.basename(instance.path)
            project.add_undo_point(name)
        return instance

    def cycle(self) -> None:
        """One pass of REAPER's main loop over deferred code."""
        self.cycles += 1
        batch = [(instance, code) for instance in self.instances for code in instance.pending]
        for instance in self.instances:
            instance.pending = []
        for instance, code in batch:
            if instance.finished:
                continue
            self._run(instance, lambda code=code: exec(code, self.main.__dict__))
        for instance in list(self.instances):
            if not instance.pending and not instance.finished:
                self._finish(instance)

    def run_until_idle(self, max_cycles: int = 1000) -> int:
        """Cycle until no script has deferred code waiting; returns the cycles run."""
        for count in range(max_cycles):
            if not any(i.pending for i in self.instances):
                return count
            self.cycle()
        raise StandInFault(f"scripts still deferring after {max_cycles} cycles")

    def terminate(self, instance: ScriptInstance) -> None:
        """What REAPER does when the user stops a running script."""
        instance.pending = []
        self._finish(instance)

    # -- internals ---------------------------------------------------------------------

    def _run(self, instance: ScriptInstance, body) -> None:
        previous, self.current = self.current, instance
        try:
            body()
        except SystemExit:
            instance.pending = []
        except StandInFault:
            raise
        except BaseException:
            self._fail(instance)
        finally:
            self.current = previous

    def _fail(self, instance: ScriptInstance) -> None:
        text = traceback.format_exc()
        self.errors.append(ScriptError(instance.path, text))
        self.app.console.append(text)
        instance.pending = []

    def _finish(self, instance: ScriptInstance) -> None:
        if instance is self.console:  # the console never ends; its atexit waits for shutdown
            if instance in self.instances:
                self.instances.remove(instance)
            return
        instance.finished = True
        codes, instance.at_exit = instance.at_exit, []
        for code in codes:
            self._run(instance, lambda code=code: exec(code, self.main.__dict__))
        if instance in self.instances:
            self.instances.remove(instance)

    def shutdown(self) -> None:
        """REAPER quitting: every running script ends and its atexit code runs."""
        for instance in [*self.instances, self.console]:
            instance.pending = []
            if instance is self.console:
                codes, instance.at_exit = instance.at_exit, []
                for code in codes:
                    self._run(instance, lambda code=code: exec(code, self.main.__dict__))
            else:
                self._finish(instance)
