"""Moving a group from one server (X) to another (Y) without losing a row.

Steps, each reported through ``progress(label, done, total)``:

1. **plan**: compare the schemas, count the rows, refuse on any collision (:mod:`.plan`).
2. **freeze**: suspend the group on X (unless it already is), under a named lock so that two
   moves of the same group cannot run at once.
3. **copy**: in ONE transaction on Y, insert the group row, the group's users that Y lacks and
   every tenant table parents first, in large multi-row INSERTs streamed from a consistent
   snapshot on X.
4. **verify**: still inside that transaction, compare per-table counts and checksums of Y with
   those of the X snapshot; only then commit.
5. **switch**: mark the group active on Y (when it was active before the move).
6. **delete**: in one transaction on X, lock the group's rows, check they still match the copy,
   delete them children first, then the group row, then the users no other row refers to.

Faults: anything failing before the commit rolls Y back and unfreezes X (the group is as it
was). After the commit both copies exist; a re-run sees identical copies on X and Y and resumes
with switch and delete. A move that already finished is reported as done. Nothing is ever
deleted on X unless Y holds the same rows.

``hook(point)`` is called at ``frozen``, ``copy:TABLE`` (after each batch), ``verified``,
``copied``, ``switched``, ``delete:TABLE`` and ``deleted``; tests use it to inject faults.
"""

# SQL text is built from identifiers only (information_schema names and the config, quoted by
# sql.ident); every value goes in as a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar, Literal

from services.cancel import NEVER_CANCELLED, CancelToken
from services.errors import Cancelled, PanelError
from services.groups.checks import Checksum, diff_checksums
from services.groups.copier import Item, Reader, insert_prefix
from services.groups.endpoint import MysqlEndpoint, close_quietly, connect, execute, mysql_errors
from services.groups.errors import MoveCancelled, MoveFailed, MoveRefused
from services.groups.models import TableCount
from services.groups.plan import (
    DEFAULT_BATCH_BYTES,
    Pair,
    PlanState,
    Side,
    SourceUser,
    analyse_users,
    make_plan,
    source_users,
)
from services.groups.selection import Part, group_parts, user_ids_sql
from services.groups.sql import ident
from services.inventory import GroupsSpec

Hook = Callable[[str], None]
Progress = Callable[[str, int, int], None]
Outcome = Literal["moved", "resumed", "already-moved"]


@dataclass(frozen=True)
class StepReport:
    name: str
    seconds: float
    detail: str = ""


@dataclass(frozen=True)
class MoveResult:
    group_id: int
    group_name: str
    source: str
    target: str
    outcome: Outcome
    tables: tuple[TableCount, ...]  # the group's rows per table, as verified on the target
    rows_copied: int
    users_copied: int
    users_deleted: int  # users removed from the source because no other row there needed them
    active_on_target: bool
    steps: tuple[StepReport, ...]
    seconds: float
    notes: tuple[str, ...] = ()

    def summary(self) -> str:
        verb = {"moved": "moved", "resumed": "finished moving", "already-moved": "was already moved"}[self.outcome]
        state = "active" if self.active_on_target else "suspended"
        lines = [f"Group {self.group_id} ({self.group_name}) {verb} from {self.source} to {self.target} "
                 f"in {self.seconds:.1f} s; it is {state} on {self.target}."]
        if self.outcome != "already-moved":
            lines.append(f"{self.rows_copied} rows copied, {self.users_copied} users copied, "
                         f"{self.users_deleted} users removed from {self.source}.")
            lines.append("Steps: " + ", ".join(f"{s.name} {s.seconds:.2f} s" for s in self.steps))
        lines.extend(self.notes)
        return "\n".join(lines)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


class _Move:
    def __init__(self, source: MysqlEndpoint, target: MysqlEndpoint, spec: GroupsSpec, group_id: int, *,
                 progress: Progress | None, cancel: CancelToken, activate: bool | None, hook: Hook | None,
                 batch_bytes: int | None) -> None:
        self.spec = spec
        self.group_id = group_id
        self.x = Side(source, spec)
        self.y = Side(target, spec)
        self.pair = Pair()
        self.progress = progress or (lambda _label, _done, _total: None)
        self.cancel = cancel
        self.activate = activate
        self.hook = hook or (lambda _point: None)
        self.batch_bytes = batch_bytes
        self.steps: list[StepReport] = []
        self.notes: list[str] = []
        self.name = f"group {group_id}"
        self.froze: datetime | None = None  # the value this move wrote into the suspended column
        self.was_suspended: bool | None = None
        self.snapshot: dict[str, Checksum] = {}
        self.rows_copied = 0
        self.users_copied = 0
        self.users_deleted = 0
        self.active_on_target = False
        self.reader: Reader | None = None
        self.user_ids: list[int] | None = None  # the users the group's rows refer to, as copied
        self.phase = "planning"  # what the move was doing, for messages
        self.lock_name = f"panel.move.{source.database}.{group_id}"[:64]

    # -- plumbing ------------------------------------------------------------------------------
    PHASES: ClassVar[dict[str, str]] = {
        "plan": "planning",
        "freeze": "freezing the group",
        "copy": "copying",
        "verify": "verifying the copy",
        "switch": "switching the group on",
        "delete": "removing the source copy",
    }

    @contextlib.contextmanager
    def step(self, name: str, detail: str = "") -> Iterator[None]:
        self.phase = self.PHASES.get(name, name)
        started = time.monotonic()
        self.progress(name, 0, 1)
        yield
        self.steps.append(StepReport(name, time.monotonic() - started, detail))
        self.progress(name, 1, 1)

    def close(self) -> None:
        if self.reader is not None:
            self.reader.stop()
        self.x.close()
        self.y.close()
        if self.reader is not None:
            self.reader.join(timeout=30)
        self.pair.close()

    def where(self, doing: str) -> str:
        return f"Moving {self.name} from {self.x.label} to {self.y.label} failed while {doing}:"

    # -- the procedure ---------------------------------------------------------------------------
    def run(self) -> MoveResult:
        started = time.monotonic()
        doing = f"moving group {self.group_id}"
        with self.step("plan"):
            self.pair.both(lambda: self.x.open(doing), lambda: self.y.open(doing))
            state = make_plan(self.x, self.y, self.group_id, self.pair, batch_bytes=self.batch_bytes)
        plan = state.plan
        self.name = f"group {self.group_id} ({plan.group_name})"
        if plan.mode == "done":
            self.active_on_target = not plan.suspended_on_target
            return self.result(plan.group_name, "already-moved", state, started)
        self.cancel.raise_if_cancelled(f"The move of {self.name}")
        try:
            with self.step("freeze"):
                self.freeze(state)
            self.hook("frozen")
            if plan.mode == "move":
                self.copy(state)
            else:
                self.snapshot = {k: v for k, v in state.expected.items()}
                self.notes.append(f"{self.y.label} already held an identical copy: the move was resumed.")
        except BaseException as exc:
            raise self.undo(exc) from exc
        try:
            self.phase = "finishing after the copy was committed"
            self.hook("copied")
            with self.step("switch"):
                self.switch(state)
            self.hook("switched")
            self.delete(state)
            self.hook("deleted")
        except BaseException as exc:
            raise self.after_copy_failure(exc) from exc
        return self.result(plan.group_name, "moved" if plan.mode == "move" else "resumed", state, started)

    def result(self, name: str, outcome: Outcome, state: PlanState, started: float) -> MoveResult:
        counts = {t: c.rows for t, c in self.snapshot.items()} or state.counts
        tables = tuple(TableCount(p.name, counts.get(p.name, 0)) for p in state.parts)
        return MoveResult(
            group_id=self.group_id, group_name=name, source=self.x.label, target=self.y.label, outcome=outcome,
            tables=tables, rows_copied=self.rows_copied, users_copied=self.users_copied,
            users_deleted=self.users_deleted, active_on_target=self.active_on_target, steps=tuple(self.steps),
            seconds=time.monotonic() - started, notes=tuple(self.notes),
        )

    def freeze(self, state: PlanState) -> None:
        spec, x = self.spec, self.x
        got = x.q("SELECT GET_LOCK(%s, 0)", (self.lock_name,))
        if not got or got[0][0] != 1:
            raise MoveRefused(f"Another move of {self.name} from {x.label} is running. Nothing was changed.")
        if state.source_suspended is not None:
            # Already suspended: by the operator, or by an interrupted move. We cannot tell which.
            self.was_suspended = True if state.plan.mode == "move" else None
            return
        # Remember the value first: if the answer to the UPDATE is lost, undo still clears exactly it.
        self.froze, self.was_suspended = _now(), False
        changed = x.x(f"UPDATE {ident(spec.table)} SET {ident(spec.suspended)} = %s "
                      f"WHERE {ident(spec.key)} = %s AND {ident(spec.suspended)} IS NULL",
                      (self.froze, self.group_id))
        if not changed:  # someone suspended it between the plan and now
            self.froze, self.was_suspended = None, True

    def copy(self, state: PlanState) -> None:
        x, y = self.x, self.y
        started = time.monotonic()
        self.phase = self.PHASES["copy"]
        self.progress("copy", 0, 1)

        def open_snapshot() -> dict[int, SourceUser]:
            x.x("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            x.x("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
            return source_users(x, self.group_id)

        mine, _ = self.pair.both(open_snapshot, lambda: y.x("START TRANSACTION"))
        # The users as they are in the snapshot; the plan's look at the target still holds if they did not
        # change (and if the target changed meanwhile, its unique keys refuse the INSERT: rolled back).
        users = state.users if state.users is not None and state.users.mine == mine else None
        if users is None:
            users = analyse_users(x, y, self.group_id, mine)
        self.user_ids = sorted(users.mine)
        if users.conflicts:
            raise MoveRefused(f"{self.name} cannot be moved: its users collide with users on {y.label}. "
                              "Nothing was changed.",
                              users.conflicts)
        copy_parts: list[Part] = []
        for part in state.parts:
            if part.role != "users":
                copy_parts.append(part)
            elif users.to_copy:
                pk = ident(part.table.primary_key[0])
                copy_parts.append(Part(part.table, f"{pk} IN ({', '.join(['%s'] * len(users.to_copy))})",
                                       tuple(users.to_copy), "users"))
        batch = self.batch_bytes or min(DEFAULT_BATCH_BYTES, y.max_packet // 2)
        batch = max(1024, min(batch, y.max_packet - 65536))
        self.reader = Reader(x, copy_parts, state.parts, batch)
        self.reader.start()
        prefixes = [insert_prefix(p) for p in copy_parts]
        done = [0] * len(copy_parts)
        totals = [len(users.to_copy) if p.role == "users" else state.counts.get(p.name, 0) for p in copy_parts]
        while True:
            item: Item = self.reader.next_item()
            if item.kind == "rows":
                part = copy_parts[item.index]
                y.x(prefixes[item.index] + ",".join(item.rows))
                done[item.index] += len(item.rows)
                self.progress(f"copy {part.name}", done[item.index], max(totals[item.index], done[item.index]))
                self.hook(f"copy:{part.name}")
                self.cancel.raise_if_cancelled(f"The move of {self.name}")
            elif item.kind == "end":
                part = copy_parts[item.index]
                self.progress(f"copy {part.name}", done[item.index], done[item.index])
            elif item.kind == "sums":
                assert item.sums is not None
                self.snapshot = item.sums
                break
            else:
                assert item.error is not None
                raise item.error
        self.reader.join()
        self.reader = None
        self.rows_copied = sum(done)
        self.users_copied = len(users.to_copy)
        self.steps.append(StepReport("copy", time.monotonic() - started, f"{self.rows_copied} rows"))
        with self.step("verify"):
            ours = y.checksums(group_parts(y.sch(), self.group_id))
            differences = diff_checksums(self.snapshot, ours, x.label, y.label)
            if differences:
                raise MoveFailed(f"{self.where('verifying the copy')} the copy on {y.label} does not match "
                                 f"{x.label}: {'; '.join(differences)}.", step="verify", state="",
                                 was_suspended=self.was_suspended, both_copies=False, source_frozen=True)
            self.hook("verified")
            self.commit_target(ours)
        # The source's read-only snapshot ends with the next START TRANSACTION (in delete): no round trip.

    def commit_target(self, expected: dict[str, Checksum]) -> None:
        y = self.y
        try:
            with y.guard():
                y.db().commit()
        except PanelError as exc:
            # Did the commit happen? Look with a fresh session.
            try:
                y.reopen(f"checking the copy of group {self.group_id}")
                now = y.checksums(group_parts(y.sch(), self.group_id))
            except PanelError:
                raise MoveFailed(
                    f"{self.where('committing the copy')} {exc}", step="commit",
                    state=f"Whether {y.label} kept the copy is unknown, and {self.x.label} keeps the group "
                          "suspended. Re-run the move: it finishes if the copy is there, or starts over.",
                    was_suspended=self.was_suspended, both_copies=False, source_frozen=True) from exc
            if now != expected:
                raise
            self.notes.append(f"The commit on {y.label} was confirmed after its connection broke.")

    def switch(self, state: PlanState) -> None:
        spec, y = self.spec, self.y
        # A fresh copy was made while the group was suspended on the source; a resumed move knows from its plan.
        suspended_there = True if state.plan.mode == "move" else state.target_suspended is not None
        wanted = self.activate if self.activate is not None else self.was_suspended is False
        if not suspended_there:
            self.active_on_target = True
            return
        if self.activate is None and self.was_suspended is None:
            self.notes.append(
                f"The group was already suspended on {self.x.label} when this run started, so it stays "
                f"suspended on {self.y.label}. If that suspension came from an interrupted move, reactivate it "
                "(or re-run with activate=True).")
        if wanted:
            y.x(f"UPDATE {ident(spec.table)} SET {ident(spec.suspended)} = NULL WHERE {ident(spec.key)} = %s",
                (self.group_id,))
            self.active_on_target = True

    def delete(self, state: PlanState) -> None:
        spec, x, y = self.spec, self.x, self.y
        schema = x.sch()
        started = time.monotonic()
        self.phase = self.PHASES["delete"]
        if x.conn is None or not x.conn.open:
            x.reopen(f"moving group {self.group_id}")
            x.q("SELECT GET_LOCK(%s, 10)", (self.lock_name,))
        checked = [p for p in state.parts if p.role != "users"]
        x.x("START TRANSACTION")
        now = x.checksums(checked, lock=True)
        expected = {p.name: self.snapshot[p.name] for p in checked if p.name in self.snapshot}
        differences = diff_checksums(expected, now, f"the copy on {y.label}", x.label, [p.name for p in checked])
        if differences:
            raise MoveFailed(f"{self.where('removing the source copy')} the group's rows changed on {x.label} "
                             f"after the copy ({'; '.join(differences)}), so nothing was deleted.",
                             step="delete", state="", was_suspended=self.was_suspended, both_copies=True,
                             source_frozen=True)
        # The users to consider for removal: those the group's rows refer to. The target has every one of them:
        # the verified (or, when resuming, compared) checksums cover the users the group's rows refer to.
        users = schema.users
        user_ids = self.user_ids
        sub, n = user_ids_sql(schema)
        if user_ids is None:
            user_ids = sorted(int(r[0]) for r in x.q(sub, [self.group_id] * n)) if users is not None and n else []
        tenant = [p for p in checked if p.role == "tenant"]
        for index, part in enumerate(reversed(tenant)):
            removed = x.x(f"DELETE FROM {ident(part.name)} WHERE {part.where}", part.args)
            if removed != now[part.name].rows:
                raise MoveFailed(f"{self.where('removing the source copy')} {part.name} had {removed} rows "
                                 f"to delete, not {now[part.name].rows}.", step="delete", state="",
                                 was_suspended=self.was_suspended, both_copies=True, source_frozen=True)
            self.progress(f"delete {part.name}", index + 1, len(tenant))
            self.hook(f"delete:{part.name}")
        x.x(f"DELETE FROM {ident(spec.table)} WHERE {ident(spec.key)} = %s", (self.group_id,))
        if users is not None and user_ids:
            pk = ident(users.primary_key[0])
            unused = " AND ".join(
                f"NOT EXISTS (SELECT 1 FROM {ident(ref.table)} AS r WHERE r.{ident(ref.columns[0])} = u.{pk})"
                for ref in schema.user_refs())
            self.users_deleted = x.x(
                f"DELETE u FROM {ident(users.name)} AS u WHERE u.{pk} IN ({', '.join(['%s'] * len(user_ids))})"
                + (f" AND {unused}" if unused else ""), user_ids)
        try:
            with x.guard():
                x.db().commit()
        except PanelError as exc:
            raise MoveFailed(f"{self.where('committing the removal of the source copy')} {exc}", step="delete",
                             state=f"{y.label} has the whole group. Whether {x.label} still has its copy is "
                                   "unknown; re-run the move: it finishes, or reports that it is done.",
                             was_suspended=self.was_suspended, both_copies=True, source_frozen=True) from exc
        self.steps.append(StepReport("delete", time.monotonic() - started))
        # The move's named lock goes with the session, which closes next.

    # -- failures ------------------------------------------------------------------------------------
    def _reason(self, exc: BaseException) -> str:
        text = self._explain(exc).rstrip()
        return text if text.endswith((".", "!", "?")) else text + "."

    def _explain(self, exc: BaseException) -> str:
        if isinstance(exc, MoveFailed):
            return exc.message.rstrip()
        if isinstance(exc, Cancelled):
            return f"{self.where(self.phase)} it was cancelled."
        if isinstance(exc, PanelError):
            return f"{self.where(self.phase)} {exc.message}"
        return f"{self.where(self.phase)} {type(exc).__name__}: {exc}"

    def undo(self, exc: BaseException) -> BaseException:
        """Before the commit: roll Y back, unfreeze X. Returns the error to raise."""
        if self.reader is not None:
            self.reader.stop()
        y_conn = self.y.conn
        if y_conn is not None:
            try:
                with mysql_errors(self.y.endpoint, "rolling back"):
                    y_conn.rollback()
            except PanelError:
                self.y.close()  # the server rolls back a transaction whose session ends
        self.x.close()  # also ends the reader's streaming query
        if self.reader is not None:
            self.reader.join(timeout=30)
            self.reader = None
        if isinstance(exc, MoveFailed) and exc.step == "commit":
            return exc  # the target may hold the copy: the source stays frozen until a re-run settles it
        unfrozen, problem = self._unfreeze()
        if isinstance(exc, MoveRefused):
            if unfrozen:
                return exc
            return MoveRefused(f"{exc.summary} The group could not be reactivated on {self.x.label} "
                               f"({problem}); reactivate it by hand.", exc.reasons)
        if self.froze is None:
            before = "still suspended, as it was before" if self.was_suspended else "as it was"
            state = f"Nothing changed: {self.y.label} has no rows of the group, and on {self.x.label} it is {before}."
        elif unfrozen:
            state = (f"Nothing changed: {self.y.label} has no rows of the group, and it is active again on "
                     f"{self.x.label}.")
        else:
            state = (f"{self.y.label} has no rows of the group, but it could not be reactivated on {self.x.label} "
                     f"({problem}): it stays suspended there. Re-run the move, or reactivate the group.")
        kind = MoveCancelled if isinstance(exc, Cancelled) else MoveFailed
        step = exc.step if isinstance(exc, MoveFailed) else next(
            (k for k, v in self.PHASES.items() if v == self.phase), "copy")
        return kind(self._reason(exc), step=step, state=state, was_suspended=self.was_suspended,
                    both_copies=False, source_frozen=self.froze is not None and not unfrozen)

    def _unfreeze(self) -> tuple[bool, str]:
        if self.froze is None:
            return True, ""
        spec = self.spec
        conn = None
        try:
            conn = connect(self.x.endpoint, doing=f"reactivating group {self.group_id}")
            with mysql_errors(self.x.endpoint, f"reactivating group {self.group_id}"):
                execute(conn, f"UPDATE {ident(spec.table)} SET {ident(spec.suspended)} = NULL "
                              f"WHERE {ident(spec.key)} = %s AND {ident(spec.suspended)} = %s",
                        (self.group_id, self.froze))
        except PanelError as exc:
            return False, exc.message
        finally:
            close_quietly(conn)
        return True, ""

    def after_copy_failure(self, exc: BaseException) -> BaseException:
        """After the commit: both copies exist; roll back a half-done delete on X and say so."""
        x_conn = self.x.conn
        if x_conn is not None:
            try:
                with mysql_errors(self.x.endpoint, "rolling back"):
                    x_conn.rollback()
            except PanelError:
                self.x.close()
        where = "active" if self.active_on_target else "suspended"
        state = (f"Nothing was lost: {self.y.label} has the whole group ({where} there) and {self.x.label} still "
                 f"has its copy, suspended. Re-run the move to finish; it resumes where it stopped.")
        if isinstance(exc, MoveFailed) and exc.state:
            return exc
        reason = self._reason(exc)
        kind = MoveCancelled if isinstance(exc, Cancelled) else MoveFailed
        step = exc.step if isinstance(exc, MoveFailed) else next(
            (k for k, v in self.PHASES.items() if v == self.phase), "after-copy")
        return kind(reason, step=step, state=state, was_suspended=self.was_suspended, both_copies=True,
                    source_frozen=True)


def move_group(
    source: MysqlEndpoint,
    target: MysqlEndpoint,
    spec: GroupsSpec,
    group_id: int,
    *,
    progress: Progress | None = None,
    cancel: CancelToken = NEVER_CANCELLED,
    activate: bool | None = None,
    hook: Hook | None = None,
    batch_bytes: int | None = None,
) -> MoveResult:
    """Move ``group_id`` from ``source`` to ``target`` (see the module docs for the steps and faults).

    ``activate``: whether the group ends active on the target. By default it does when it was active
    before the move; when this run finds it already suspended on the source (an operator's
    suspension, or an interrupted move), it stays suspended unless ``activate=True``.
    ``progress(label, done, total)`` is called with labels ``plan``, ``freeze``, ``copy TABLE``,
    ``verify``, ``switch`` and ``delete TABLE``. ``cancel`` is honoured until the copy is committed;
    after that the move finishes, since that is the quickest way back to one copy.

    Raises :class:`MoveRefused` (nothing changed), :class:`MoveFailed` / :class:`MoveCancelled`
    (``state`` says where the copies are; a re-run is always safe), :class:`GroupNotFound`, or a
    connection error raised before anything changed.
    """
    move = _Move(source, target, spec, group_id, progress=progress, cancel=cancel, activate=activate,
                 hook=hook, batch_bytes=batch_bytes)
    try:
        return move.run()
    finally:
        move.close()
