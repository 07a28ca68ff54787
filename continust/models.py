"""The stored shape of continust: projects, streams, the event log and the version graph.

Events, versions, their parent links and states never change once written: the
models refuse ``save()`` on an existing row and the migrations add database
triggers that refuse UPDATE and DELETE. Branches are the only movable thing, and
every move of a branch is recorded as a ``BranchMove``.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q


class Role(models.TextChoices):
    VIEWER = "viewer", "viewer"
    EDITOR = "editor", "editor"
    REVIEWER = "reviewer", "reviewer"
    ADMIN = "admin", "admin"

    @classmethod
    def rank(cls, role: str) -> int:
        """Order roles so that each one includes the powers of those before it."""
        return [cls.VIEWER, cls.EDITOR, cls.REVIEWER, cls.ADMIN].index(cls(role))


class UnregisteredTypes(models.TextChoices):
    """Whether a project takes events of a type its registry does not know."""

    ALLOW = "allow", "allow"
    REFUSE = "refuse", "refuse"


class Project(models.Model):
    """A workspace owned by a team; the unit of access control."""

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="projects"
    )
    # The review rule: may whoever opened a review approve it? Admins change it on the
    # Members page; each change is recorded in the project's audit stream.
    self_approval = models.BooleanField(default=False)
    # The event-type registry (``continust.schemas``): whether a type nobody registered may
    # be appended, and a counter every change of the registry or this setting bumps, so an
    # append that loaded the project knows whether its cached validators still hold (0: no
    # type was ever registered, and an append looks nothing up).
    unregistered_types = models.CharField(
        max_length=8, choices=UnregisteredTypes.choices, default=UnregisteredTypes.ALLOW
    )
    schema_revision = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class Membership(models.Model):
    """A user's role in a project."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="one_membership_per_user")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.project} as {self.role}"

    def allows(self, role: str) -> bool:
        """Tell whether this membership's role includes ``role``."""
        return Role.rank(self.role) >= Role.rank(role)


class Retention(models.TextChoices):
    """What a stream remembers (``continust.retention`` explains each policy)."""

    ETERNAL = "eternal", "eternal"
    SELECTIVE = "selective", "selective"
    EPHEMERAL = "ephemeral", "ephemeral"


class Stream(models.Model):
    """The history of one thing; its events form one hash chain."""

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="streams")
    name = models.CharField(max_length=200)
    reducer = models.CharField(max_length=100, default="merge")
    reducer_version = models.PositiveIntegerField(default=1)
    retention = models.CharField(
        max_length=16, choices=Retention.choices, default=Retention.ETERNAL
    )
    # selective: a stored state every this many generations.
    snapshot_every = models.PositiveIntegerField(default=100)
    # ephemeral: keep the newest this many versions, and those younger than this age.
    horizon_versions = models.PositiveIntegerField(null=True, blank=True)
    horizon_age = models.DurationField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # The end of the hash chain: how many events, and the hash of the last one.
    event_count = models.PositiveBigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default="0" * 64)
    # Encryption of personal data (continust.log.sealing): None, or {"subject": MEMBER},
    # the payload member that names each event's data subject; every other top-level
    # member is then stored encrypted with that subject's key.
    personal = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["project", "name"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="stream_name_unique")
        ]

    def __str__(self) -> str:
        return f"{self.project.slug}/{self.name}"


class SubjectKey(models.Model):
    """The key a data subject's personal fields are encrypted with, one per project and
    subject; erasure destroys it (``key`` becomes NULL) and keeps the row as the record
    that the subject was erased."""

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="+")
    subject = models.CharField(max_length=200)
    # 32 bytes of AES-256-GCM key, or nonce + the key sealed by CONTINUST_MASTER_KEY.
    key = models.BinaryField(null=True)
    wrapped = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    erased_at = models.DateTimeField(null=True, blank=True)
    erased_by = models.CharField(max_length=200, blank=True, default="")
    erase_reason = models.TextField(blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "subject"], name="subject_key_unique")
        ]

    def __str__(self) -> str:
        return f"{self.project_id}/{self.subject}"


class AppendOnly(models.Model):
    """Refuse to save a row that already exists; the database refuses it as well."""

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise TypeError(f"{type(self).__name__} rows are immutable")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise TypeError(f"{type(self).__name__} rows are never deleted")


class Event(AppendOnly):
    """One recorded change; ``position`` orders the whole log, ``seq`` one stream.

    An event's id is its idempotency key, unique within its project: one tenant can
    neither see nor take the ids of another. The write path guarantees what the
    missing foreign-key constraints would check (``continust.log``).
    """

    position = models.BigAutoField(primary_key=True)
    id = models.UUIDField(default=uuid.uuid4, editable=False)
    project = models.ForeignKey(
        Project, on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False
    )
    # (stream, seq) is unique and indexed: no index of the stream alone.
    stream = models.ForeignKey(
        Stream, on_delete=models.PROTECT, related_name="events", db_index=False, db_constraint=False
    )
    seq = models.PositiveBigIntegerField()
    type = models.CharField(max_length=200)
    timestamp = models.DateTimeField()
    payload = models.JSONField()
    causation_id = models.UUIDField(null=True, blank=True)
    correlation_id = models.UUIDField(null=True, blank=True)
    actor = models.CharField(max_length=200, blank=True, default="")
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(fields=["stream", "seq"], name="event_seq_unique"),
            models.UniqueConstraint(fields=["project", "id"], name="event_id_unique_in_project"),
        ]
        indexes = [
            # Most events have no cause: index only those that do.
            models.Index(
                fields=["causation_id"],
                condition=Q(causation_id__isnull=False),
                name="event_causation",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.id}"


class State(models.Model):
    """A state document, stored once per distinct content and keyed by its hash."""

    hash = models.CharField(max_length=64, primary_key=True)
    data = models.JSONField()

    def __str__(self) -> str:
        return self.hash[:12]


class Version(AppendOnly):
    """An immutable node of a stream's graph, made by one event."""

    # version_stream serves lookups by stream; the write path guarantees the references.
    stream = models.ForeignKey(
        Stream,
        on_delete=models.PROTECT,
        related_name="versions",
        db_index=False,
        db_constraint=False,
    )
    event = models.ForeignKey(
        Event, on_delete=models.PROTECT, related_name="versions", db_constraint=False
    )
    # The hash of the version's state. The State row may be absent: a selective stream
    # stores only snapshots, and compaction releases states (continust.log.states reads them).
    state = models.ForeignKey(
        State, on_delete=models.DO_NOTHING, related_name="+", db_constraint=False, db_index=False
    )
    # The first parent (the only one but for a merge; none for a root). A merge's second
    # and later parents are ``VersionParent`` rows, so a linear append writes no link row;
    # ``continust.graph.parents`` reads both. Indexed for the lookup of a version's children.
    first_parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_constraint=False,
    )
    generation = models.PositiveIntegerField()
    # Nothing looks a version up by digest in the database; no index (nor its LIKE twin).
    digest = models.CharField(max_length=64)
    key = models.CharField(max_length=200, null=True, blank=True)
    branch = models.CharField(max_length=200)
    reducer = models.CharField(max_length=100)
    reducer_version = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["stream", "key"], condition=Q(key__isnull=False), name="version_key_unique"
            )
        ]
        indexes = [
            # Ascending: a stream's newest version is its rightmost entry, so appends fill
            # pages (a descending index took each new id at its range's left end, splitting
            # pages in half: twice the bytes). PostgreSQL and SQLite scan it backwards for
            # newest-first reads.
            models.Index(fields=["stream", "id"], name="version_stream"),
            # Compaction and the release trigger find a state's versions by it; a plain
            # btree, without the varchar_pattern_ops twin a CharField key would get.
            models.Index(fields=["state"], name="version_state"),
        ]

    def __str__(self) -> str:
        return f"v{self.pk}"


class VersionParent(AppendOnly):
    """A merge's second or later parent (``index`` 1, 2, …): the first parent of every
    version is its ``Version.first_parent``."""

    # parent_index_unique serves lookups by child.
    child = models.ForeignKey(
        Version,
        on_delete=models.PROTECT,
        related_name="parent_links",
        db_index=False,
        db_constraint=False,
    )
    parent = models.ForeignKey(
        Version, on_delete=models.PROTECT, related_name="child_links", db_constraint=False
    )
    index = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["child", "index"]
        constraints = [
            models.UniqueConstraint(fields=["child", "index"], name="parent_index_unique")
        ]


class Branch(models.Model):
    """A named, movable head of a stream."""

    # branch_name_unique serves lookups by stream.
    stream = models.ForeignKey(
        Stream, on_delete=models.PROTECT, related_name="branches", db_index=False
    )
    name = models.CharField(max_length=200)
    # Looked up by head only within a stream (branch_name_unique's prefix): no index, so
    # moving a head is a HOT update of the branch row.
    head = models.ForeignKey(
        Version, on_delete=models.PROTECT, related_name="+", db_constraint=False, db_index=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # The hash of the branch's last move: the database lets the head change only to the
    # head of a move recorded after the one this names (continust.log.triggers).
    move_hash = models.CharField(max_length=64, default="0" * 64)

    class Meta:
        ordering = ["stream", "name"]
        constraints = [
            models.UniqueConstraint(fields=["stream", "name"], name="branch_name_unique")
        ]

    def __str__(self) -> str:
        return self.name


class BranchMove(AppendOnly):
    """A recorded move of a branch: where from, where to, why and by whom."""

    # Indexed with the new head below (the guard of a branch's head looks a move up by
    # both); the write path guarantees the references, so no foreign-key checks.
    branch = models.ForeignKey(
        Branch, on_delete=models.PROTECT, related_name="moves", db_index=False, db_constraint=False
    )
    old_head = models.ForeignKey(
        Version,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    new_head = models.ForeignKey(
        Version, on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False
    )
    reason = models.CharField(max_length=32)
    actor = models.CharField(max_length=200, blank=True, default="")
    at = models.DateTimeField()
    # Each branch's moves form a hash chain, as a stream's events do.
    prev_hash = models.CharField(max_length=64, default="0" * 64)
    hash = models.CharField(max_length=64, default="0" * 64)

    class Meta:
        ordering = ["id"]
        indexes = [
            # The guard of a branch (``continust.log.triggers``) finds the move that put its
            # new head there: one probe, however many moves the branch has made.
            models.Index(fields=["branch", "new_head"], name="branchmove_branch_head")
        ]


class OutboxMessage(models.Model):
    """A task message to hand to the broker, recorded in the transaction that asked for it.

    ``continust.jobs.outbox`` sends unsent rows and marks them sent; a row is sent at
    least once, so the tasks it names must be idempotent.
    """

    task = models.CharField(max_length=200)
    args = models.JSONField(default=list)
    # What the message is about ("replay:12"): a sweep that sends again finds it by this.
    key = models.CharField(max_length=200, blank=True, default="", db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["id"], condition=Q(sent_at__isnull=True), name="outbox_unsent")
        ]

    def __str__(self) -> str:
        return f"{self.task}{self.args}"


class OpenFeed(models.Model):
    """A live change feed being served (``continust.read.feed``): who holds it (an API
    token or an explorer user) and until when at most. Their number per holder is capped;
    a row a crashed process left behind stops counting when it expires."""

    holder = models.CharField(max_length=100)
    expires_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["holder", "expires_at"], name="open_feed_holder")]


class Leased(models.Model):
    """A background job that one worker at a time holds under a fenced lease.

    ``fence`` is the token of the current claim: every claim bumps it and every write
    on the claim's behalf checks it, so a holder whose lease lapsed and was claimed
    again writes nothing more. ``continust.jobs.leases`` is the protocol.
    """

    fence = models.BigIntegerField(default=0)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True, default="")
    attempts = models.PositiveIntegerField(default=0)

    class Meta:
        abstract = True


class ReplayStatus(models.TextChoices):
    WAITING = "waiting", "waiting for a worker"
    RUNNING = "running", "running"
    DONE = "done", "done"
    FAILED = "failed", "failed"
    CANCELLED = "cancelled", "cancelled"


class Replay(Leased):
    """A replay of a range of a stream into a shadow branch, with its claim and progress.

    The request (start, end, filters, reducer version) never changes. The progress
    (``cursor``, ``done``, ``written``, ``shadow_head``) is committed in the same
    transaction as each chunk of replayed versions; ``fence`` is the token of the
    current claim, which every such commit checks.
    """

    stream = models.ForeignKey(Stream, on_delete=models.PROTECT, related_name="replays")
    start = models.ForeignKey(
        Version, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    end = models.ForeignKey(Version, on_delete=models.PROTECT, related_name="+")
    branch = models.CharField(max_length=200, blank=True, default="")
    skip_types = models.JSONField(default=list, blank=True)
    skip_events = models.JSONField(default=list, blank=True)
    until = models.DateTimeField(null=True, blank=True)
    reducer_version = models.PositiveIntegerField(null=True, blank=True)
    # Fold with upcasting: each event type's payloads read in this version of its type
    # (the newest registered when the replay started); None folds the stored payloads.
    upcast_to = models.JSONField(null=True, blank=True)
    actor = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    status = models.CharField(
        max_length=16, choices=ReplayStatus.choices, default=ReplayStatus.WAITING
    )
    total = models.PositiveBigIntegerField(default=0)
    done = models.PositiveBigIntegerField(default=0)
    written = models.PositiveBigIntegerField(default=0)
    cursor = models.BigIntegerField(default=0)
    shadow_head = models.ForeignKey(
        Version, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Where its runs spent their time, in seconds over every claim (``GET /metrics``):
    # folding and writing chunks, waiting for the stream's lock (appends hold it), and
    # pausing between chunks (``CONTINUST_REPLAY_CHUNK_DELAY_MS``). Booked per chunk.
    busy_seconds = models.FloatField(default=0)
    blocked_seconds = models.FloatField(default=0)
    throttled_seconds = models.FloatField(default=0)

    cancel_requested = models.BooleanField(default=False)

    started_at = models.DateTimeField(null=True, blank=True)
    resumed_at = models.DateTimeField(null=True, blank=True)
    resumed_done = models.PositiveBigIntegerField(default=0)
    progress_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    error = models.TextField(blank=True, default="")
    error_event = models.UUIDField(null=True, blank=True)
    promoted_at = models.DateTimeField(null=True, blank=True)
    promoted_by = models.CharField(max_length=200, blank=True, default="")
    # A finished, unpromoted replay whose shadow branch an admin gave up: its versions are
    # no longer kept by retention (the branch row stays; the log refuses deletes).
    discarded_at = models.DateTimeField(null=True, blank=True)
    discarded_by = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["status"], name="replay_status")]

    def __str__(self) -> str:
        return f"replay {self.pk}"

    @property
    def shadow_branch(self) -> str:
        """The name of the branch the replay writes."""
        return f"replay/{self.pk}"

    @property
    def finished(self) -> bool:
        return self.status in {ReplayStatus.DONE, ReplayStatus.FAILED, ReplayStatus.CANCELLED}


# --------------------------------------------------------------------------- pipelines
# Continuous pipelines over the log (continust.pipelines). Appended section: the models
# above belong to the log, the version graph and replays.


class PipelineStatus(models.TextChoices):
    IDLE = "idle", "idle"
    WAITING = "waiting", "waiting for a worker"
    RUNNING = "running", "running"
    PAUSED = "paused", "paused"
    FAILED = "failed", "failed"


class Pipeline(Leased):
    """A pipeline of a project: its definition, its owner's lease and its committed progress.

    ``epoch``, ``cursor`` and ``state`` move only in the transaction that writes an
    epoch's results to the sink, which first locks this row and checks ``fence``,
    the token of the current lease (``continust.pipelines.runner``).
    """

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="pipelines")
    name = models.SlugField(max_length=64)
    definition = models.CharField(max_length=100)
    params = models.JSONField(default=dict, blank=True)
    # A pipeline a user defined: its declarative spec (``continust.pipelines.specs``);
    # None for one that runs a registered definition.
    spec = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=200, blank=True, default="")

    # What users asked for (run or not), and what the system is doing about it.
    enabled = models.BooleanField(default=False)
    status = models.CharField(
        max_length=16, choices=PipelineStatus.choices, default=PipelineStatus.IDLE
    )
    error = models.TextField(blank=True, default="")

    # The lease (``Leased``): one owner at a time, renewed by its heartbeat.
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    # Committed progress, written with the sink's rows in one transaction.
    epoch = models.PositiveBigIntegerField(default=0)
    cursor = models.JSONField(default=list, blank=True)
    state = models.JSONField(default=dict, blank=True)
    events = models.PositiveBigIntegerField(default=0)
    late_events = models.PositiveBigIntegerField(default=0)
    results = models.PositiveBigIntegerField(default=0)
    committed_at = models.DateTimeField(null=True, blank=True)

    # Live figures per stage, written by the owner's heartbeat.
    metrics = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["project", "name"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="pipeline_name_unique")
        ]

    def __str__(self) -> str:
        return f"{self.project.slug}/{self.name}"


class PipelineCheckpoint(models.Model):
    """A stage's output for an epoch not yet committed to the sink (and its state after it).

    A restarted run takes a stage's output from here instead of executing the stage
    again; the commit of an epoch deletes the checkpoints it made unnecessary.
    """

    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="checkpoints")
    stage = models.CharField(max_length=100)
    epoch = models.PositiveBigIntegerField()
    data = models.JSONField()

    class Meta:
        ordering = ["pipeline", "epoch", "stage"]
        constraints = [
            models.UniqueConstraint(
                fields=["pipeline", "stage", "epoch"], name="pipeline_checkpoint_unique"
            )
        ]


class PipelineRun(models.Model):
    """One claim of a pipeline: who ran it, where it resumed and what it recovered."""

    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="runs")
    fence = models.BigIntegerField()
    worker = models.CharField(max_length=200, blank=True, default="")
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=32, blank=True, default="")
    # The committed epoch and event count it started from.
    resumed_epoch = models.PositiveBigIntegerField(default=0)
    resumed_events = models.PositiveBigIntegerField(default=0)
    # Per stage: epochs whose output it took from checkpoints instead of executing.
    recovered = models.JSONField(default=dict, blank=True)
    # Events read before the crash, not committed, that went through a stage again.
    redelivered = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["-id"]


class WindowResult(models.Model):
    """The built-in sink: the latest result of each window a pipeline fired.

    Upserted by (pipeline, key, start, end): a window that fires again within the
    allowed lateness replaces its row, and writing an epoch twice changes nothing.
    """

    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="window_results")
    key = models.TextField()
    start = models.BigIntegerField()
    end = models.BigIntegerField()
    fire = models.PositiveIntegerField(default=1)
    count = models.BigIntegerField(null=True, blank=True)
    values = models.JSONField(default=dict)
    epoch = models.PositiveBigIntegerField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["pipeline", "end", "key"]
        constraints = [
            models.UniqueConstraint(
                fields=["pipeline", "key", "start", "end"], name="window_result_unique"
            )
        ]
        indexes = [models.Index(fields=["pipeline", "-end"], name="window_result_recent")]


class LateEvent(models.Model):
    """An element that came after every window it belongs to was closed (the side output)."""

    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="late")
    epoch = models.PositiveBigIntegerField()
    index = models.PositiveIntegerField()
    key = models.TextField()
    ts = models.BigIntegerField()
    value = models.JSONField(null=True)

    class Meta:
        ordering = ["pipeline", "epoch", "index"]
        constraints = [
            models.UniqueConstraint(fields=["pipeline", "epoch", "index"], name="late_event_unique")
        ]


class SinkTable(models.Model):
    """Whose a table a pipeline's table sink writes is (``continust.pipelines.tables``).

    Recorded in the transaction in which the sink creates the table (``adopted`` false) or
    first takes an existing one the operator allows (``CONTINUST_PIPELINE_ADOPT_TABLES``,
    ``adopted`` true). Kept when the pipeline goes: the table still holds the project's
    rows, so no other project's pipeline writes or clears it. A record whose table no longer
    exists is stale and gives way to the pipeline that creates the table again.
    """

    name = models.CharField(max_length=63, unique=True)
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="+")
    # The pipeline that writes it (its name: the record outlives the pipeline).
    pipeline = models.SlugField(max_length=64)
    adopted = models.BooleanField(default=False)
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


# --------------------------------------------------------------------------- reviews
# Team audit reviews (continust.audit.reviews, continust.audit.members, continust.audit). Appended
# section: what a review says is events of the project's audit stream; these rows index them.


class Review(AppendOnly):
    """An audit review of a range of one stream: the versions ``head`` reaches and ``base`` not.

    The range never changes. Comments, check marks and decisions about it are events of
    the project's audit stream, correlated to ``opened_event`` (the ``review.opened`` event).
    """

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="reviews")
    stream = models.ForeignKey(Stream, on_delete=models.PROTECT, related_name="reviews")
    # None: the range starts at the stream's root.
    base = models.ForeignKey(
        Version, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    head = models.ForeignKey(Version, on_delete=models.PROTECT, related_name="+")
    # The branch reviewed against main (base is then their merge base), or "".
    branch = models.CharField(max_length=200, blank=True, default="")
    title = models.CharField(max_length=200)
    opened_by = models.CharField(max_length=200)
    opened_at = models.DateTimeField()
    opened_event = models.OneToOneField(Event, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"review {self.pk}"

    @property
    def key(self) -> uuid.UUID:
        """The id of the ``review.opened`` event: every event of the review correlates to it."""
        return self.opened_event.id


class AuditRecord(AppendOnly):
    """An event of a project's audit stream that continust's own review functions wrote.

    Reviews and reports count only these: an event appended to the audit stream by
    another path (the HTTP API, an import) has no record and is shown as foreign.
    """

    event = models.OneToOneField(Event, on_delete=models.PROTECT, related_name="audit_record")
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="+")
    review = models.ForeignKey(
        Review, null=True, blank=True, on_delete=models.PROTECT, related_name="records"
    )

    class Meta:
        ordering = ["event"]


# --------------------------------------------------------------------------- retention
# Compaction (continust.retention.compaction): the one audited path that releases payloads and
# states. Appended section.


class CompactionStatus(models.TextChoices):
    PENDING = "pending", "pending"
    RUNNING = "running", "running"
    DONE = "done", "done"
    FAILED = "failed", "failed"


class Compaction(Leased):
    """One run of a stream's retention policy: what it considered, how far it got, what it did.

    ``upto`` and ``cutoff`` pin what the run considers, so a rerun after a crash plans
    the same work; ``phase`` and ``cursor`` say how far it got, and each chunk moves
    them in the transaction that does the chunk's work.
    """

    stream = models.ForeignKey(Stream, on_delete=models.PROTECT, related_name="compactions")
    policy = models.JSONField()
    upto = models.BigIntegerField()
    cutoff = models.DateTimeField(null=True, blank=True)
    status = models.CharField(
        max_length=16, choices=CompactionStatus.choices, default=CompactionStatus.PENDING
    )
    requested_by = models.CharField(max_length=200, blank=True, default="")
    requested_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    phase = models.CharField(max_length=16, default="snapshots")
    cursor = models.BigIntegerField(default=0)
    snapshots_stored = models.PositiveIntegerField(default=0)
    states_released = models.PositiveIntegerField(default=0)
    payloads_released = models.PositiveIntegerField(default=0)
    versions_released = models.PositiveIntegerField(default=0)
    runs = models.PositiveIntegerField(default=0)
    bytes_before = models.BigIntegerField(null=True, blank=True)
    bytes_after = models.BigIntegerField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    record = models.ForeignKey(
        Event, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"compaction {self.pk} of {self.stream}"


class ReleasedRun(AppendOnly):
    """The compacted node that stands for a released chain of versions, oldest to newest.

    ``merkle_root`` is the root over the released events' hashes in chain order:
    ``verify`` recomputes it from the event rows, which keep their hashes.
    """

    stream = models.ForeignKey(Stream, on_delete=models.PROTECT, related_name="released_runs")
    compaction = models.ForeignKey(Compaction, on_delete=models.PROTECT, related_name="+")
    first = models.ForeignKey(Version, on_delete=models.PROTECT, related_name="+")
    last = models.ForeignKey(Version, on_delete=models.PROTECT, related_name="+")
    length = models.PositiveIntegerField()
    merkle_root = models.CharField(max_length=64)
    bytes_released = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["first"]
        constraints = [
            models.UniqueConstraint(fields=["stream", "first"], name="released_run_unique")
        ]

    def __str__(self) -> str:
        return f"{self.length} versions v{self.first_id}..v{self.last_id}"


class ReleasedVersion(AppendOnly):
    """A version whose state (and, when no kept version shares it, event payload) is gone."""

    version = models.OneToOneField(
        Version, primary_key=True, on_delete=models.PROTECT, related_name="released"
    )
    run = models.ForeignKey(ReleasedRun, on_delete=models.PROTECT, related_name="versions")


class ReleasePermit(models.Model):
    """Written and deleted inside one compaction chunk's transaction: while it exists, the
    database triggers let that transaction release the stream's payloads and states."""

    compaction = models.ForeignKey(Compaction, on_delete=models.CASCADE, related_name="+")
    stream = models.ForeignKey(Stream, on_delete=models.CASCADE, related_name="+")


class Verification(models.Model):
    """A verification of a project fanned out over workers, one part per stream."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="verifications")
    requested_by = models.CharField(max_length=200, blank=True, default="")
    requested_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    streams = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"verification {self.pk} of {self.project}"


class VerificationPart(models.Model):
    """One stream's share of a verification: what a worker checked and found broken."""

    verification = models.ForeignKey(Verification, on_delete=models.CASCADE, related_name="parts")
    stream = models.ForeignKey(Stream, on_delete=models.CASCADE, related_name="+")
    finished_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True, default="")
    events = models.PositiveBigIntegerField(default=0)
    versions = models.PositiveBigIntegerField(default=0)
    head = models.CharField(max_length=64, blank=True, default="")
    breaks = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["verification", "stream"], name="one_part_per_stream")
        ]


# --------------------------------------------------------------------------- projections
# Read models kept from the project's log (continust.projections). Appended section.


class ProjectionStatus(models.TextChoices):
    IDLE = "idle", "idle"
    WAITING = "waiting", "waiting for a worker"
    RUNNING = "running", "running"
    FAILED = "failed", "failed"


class Projection(Leased):
    """A registered projection kept for one project: its tables' generation and position.

    The position (``tx``, ``position``: a log position ``T.P``) moves only in the
    transaction that writes the rows of the events up to it, which first locks this
    row and checks ``fence`` (``continust.projections.runner``). A rebuild fills the
    next generation of tables from position 0 with a position of its own
    (``rebuild_*``) and swaps it in, in one transaction, when it has caught up.
    """

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="projections")
    name = models.CharField(max_length=24)
    status = models.CharField(
        max_length=16, choices=ProjectionStatus.choices, default=ProjectionStatus.IDLE
    )
    # The live tables' generation (0: none created yet) and what they hold.
    generation = models.PositiveIntegerField(default=0)
    tx = models.BigIntegerField(default=0)
    position = models.BigIntegerField(default=0)
    events = models.PositiveBigIntegerField(default=0)
    committed_at = models.DateTimeField(null=True, blank=True)
    # Events per second over the last run's commits.
    rate = models.FloatField(default=0)
    # Where its runs spent their time, in seconds over every claim (``GET /metrics``):
    # reading and applying batches, waiting for appends once caught up, and pausing
    # between batches (``CONTINUST_PROJECTION_BATCH_DELAY_MS``). Booked per batch.
    busy_seconds = models.FloatField(default=0)
    idle_seconds = models.FloatField(default=0)
    throttled_seconds = models.FloatField(default=0)
    error = models.TextField(blank=True, default="")
    error_at = models.DateTimeField(null=True, blank=True)
    # A rebuild in progress (generation 0: none): shadow tables and their own position.
    rebuild_generation = models.PositiveIntegerField(default=0)
    rebuild_tx = models.BigIntegerField(default=0)
    rebuild_position = models.BigIntegerField(default=0)
    rebuild_events = models.PositiveBigIntegerField(default=0)
    rebuild_by = models.CharField(max_length=200, blank=True, default="")
    rebuilt_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["project", "name"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="projection_name_unique")
        ]

    def __str__(self) -> str:
        return f"{self.project.slug}/{self.name}"


# ------------------------------------------------------------------------ subscriptions
# Named, durable subscriptions to a project's log (continust.subscriptions). Appended
# section: the models above belong to the log, replays, pipelines and retention.


class SubscriptionKind(models.TextChoices):
    CATCH_UP = "catch-up", "catch-up"
    PERSISTENT = "persistent", "persistent"


class SubscriptionStatus(models.TextChoices):
    IDLE = "idle", "idle"
    RUNNING = "running", "running"


class Subscription(Leased):
    """A named reader of a project's log and the log position it has reached.

    A catch-up subscription's subscriber holds the row's lease (``Leased``) while it runs
    and moves ``position`` in the transaction that commits its handler's writes. A
    persistent subscription moves ``position`` as it queues events as messages for its
    competing consumers (``SubscriptionMessage``), by compare-and-set on the position and
    the fence.
    """

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="subscriptions")
    name = models.SlugField(max_length=64)
    kind = models.CharField(
        max_length=16, choices=SubscriptionKind.choices, default=SubscriptionKind.CATCH_UP
    )
    # The handler a worker or ``subscription run`` calls: a dotted path to a function.
    handler = models.CharField(max_length=200, blank=True, default="")
    # What it reads of the log (``continust.read.project_log.LogFilter``).
    stream = models.CharField(max_length=200, blank=True, default="")
    type_prefix = models.CharField(max_length=200, blank=True, default="")
    actor = models.CharField(max_length=200, blank=True, default="")
    # The log position read up to, ``T.P`` (``continust.read.project_log.LogPosition``).
    position_tx = models.BigIntegerField(default=0)
    position = models.BigIntegerField(default=0)
    status = models.CharField(
        max_length=16, choices=SubscriptionStatus.choices, default=SubscriptionStatus.IDLE
    )
    # Events handled (catch-up) or queued for the consumers (persistent).
    handled = models.PositiveBigIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    last_error_at = models.DateTimeField(null=True, blank=True)
    # Persistent subscriptions: retries, parking, consumers run as Celery tasks.
    max_attempts = models.PositiveIntegerField(default=5)
    backoff_seconds = models.FloatField(default=1.0)
    backoff_max_seconds = models.FloatField(default=60.0)
    ack_timeout_seconds = models.FloatField(default=30.0)
    consumers = models.PositiveSmallIntegerField(default=1)
    enabled = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        ordering = ["project", "name"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="subscription_name_unique")
        ]

    def __str__(self) -> str:
        return f"{self.project.slug}/{self.name}"


# --------------------------------------------------------------------------- tags
# Tags (continust.audit.tags): immutable names for versions. Appended section.


class Tag(AppendOnly):
    """An immutable name for one version of a stream, unique in the stream.

    A tag never moves and is never deleted: the ORM refuses both, and the database
    refuses an UPDATE (``continust.log.triggers``). Who tagged what, and when, is also
    an event of the project's audit stream (``event``).
    """

    stream = models.ForeignKey(
        Stream, on_delete=models.PROTECT, related_name="tags", db_index=False
    )
    name = models.CharField(max_length=200)
    version = models.ForeignKey(
        Version, on_delete=models.PROTECT, related_name="tags", db_constraint=False
    )
    actor = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    event = models.OneToOneField(Event, on_delete=models.PROTECT, related_name="tag")

    class Meta:
        ordering = ["stream", "name"]
        constraints = [models.UniqueConstraint(fields=["stream", "name"], name="tag_name_unique")]

    def __str__(self) -> str:
        return self.name


# -- webhooks (continust.webhooks) -------------------------------------------------------------


class Webhook(models.Model):
    """An HTTP endpoint a project's admin registered to be told of the project's events.

    ``after_tx``/``after_position`` is the log position (``continust.read.project_log``)
    up to which the project's log has been turned into deliveries: it moves only in the
    transaction that records those deliveries (``continust.webhooks.follow``).
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="webhooks")
    url = models.CharField(max_length=2000)
    # Event type prefixes; an empty list matches every event.
    event_types = models.JSONField(default=list, blank=True)
    # "whsec_" + base64 of the key (the Standard Webhooks form); kept to sign deliveries.
    secret = models.CharField(max_length=200)
    active = models.BooleanField(default=True)
    after_tx = models.BigIntegerField(default=0)
    after_position = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        ordering = ["project", "id"]

    def __str__(self) -> str:
        return f"webhook {self.pk} of {self.project_id}: {self.url}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "pending"
    SENDING = "sending", "sending"
    DELIVERED = "delivered", "delivered"
    FAILED = "failed", "failed (given up)"


class WebhookDelivery(Leased):
    """One event to POST to one webhook, with its retries; one row per (webhook, event).

    A worker claims it under a lease (``continust.jobs.leases``) for each attempt, so
    two deliveries of its task message never send it at once; a delivery waiting for a
    retry is due again at ``next_attempt_at``.
    """

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    # An event of the log, or (event null) an epoch's results of a pipeline whose sink is
    # this webhook (``continust.pipelines.user_sinks``): ``pipeline``, ``epoch``, ``results``.
    event = models.ForeignKey(Event, on_delete=models.PROTECT, related_name="+", null=True)
    pipeline = models.ForeignKey(
        "Pipeline", on_delete=models.CASCADE, related_name="+", null=True, blank=True
    )
    epoch = models.PositiveBigIntegerField(null=True, blank=True)
    results = models.JSONField(null=True, blank=True)
    position = models.CharField(max_length=64)  # the event's log position, "T.P"
    status = models.CharField(
        max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    next_attempt_at = models.DateTimeField()
    # A task message for the next attempt is in the outbox or the broker. Claiming clears
    # it; a retry that falls due is queued by the dispatcher's sweep, once.
    queued = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["webhook", "event"], name="one_delivery_per_event")
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status__in=["pending", "sending"]),
                name="delivery_due",
            )
        ]

    def __str__(self) -> str:
        return f"delivery {self.pk} of webhook {self.webhook_id}"


class WebhookAttempt(models.Model):
    """One POST of a delivery: when, how long, the status code or the error."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="tries")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(default=0)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    ok = models.BooleanField(default=False)

    class Meta:
        ordering = ["delivery", "number"]


class MessageStatus(models.TextChoices):
    WAITING = "waiting", "waiting"
    RUNNING = "running", "with a consumer"
    PARKED = "parked", "parked"


class SubscriptionMessage(Leased):
    """An event a persistent subscription queued for its consumers, until one acknowledges it.

    One consumer at a time holds it under a lease (``Leased``); the acknowledgement
    deletes the row in the transaction of the handler's writes, after checking the
    lease's fence. A failure puts it back with a later ``due_at`` (exponential backoff),
    or parks it after the subscription's ``max_attempts``.
    """

    subscription = models.ForeignKey(
        Subscription, on_delete=models.CASCADE, related_name="messages"
    )
    event = models.ForeignKey(
        Event, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    log_tx = models.BigIntegerField()
    log_position = models.BigIntegerField()
    status = models.CharField(
        max_length=16, choices=MessageStatus.choices, default=MessageStatus.WAITING
    )
    due_at = models.DateTimeField()
    last_error = models.TextField(blank=True, default="")
    failed_at = models.DateTimeField(null=True, blank=True)
    parked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["subscription", "log_tx", "log_position"]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "log_tx", "log_position"],
                name="subscription_message_unique",
            )
        ]
        indexes = [
            models.Index(
                fields=["subscription", "status", "due_at"], name="subscription_message_due"
            )
        ]


class EventType(models.Model):
    """One version of an event type in a project's registry: its JSON Schema (Draft
    2020-12) and, from version 2 on, the upcaster that turns a payload of the previous
    version into this one (a JSON Patch or a registered function). Never changed: a new
    shape is a new version."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="event_types")
    name = models.CharField(max_length=200)
    version = models.PositiveIntegerField()
    schema = models.JSONField()
    # From the previous version: RFC 6902 operations, or the dotted path of a function
    # registered with ``continust.schemas.upcasters.upcaster``; neither on version 1.
    upcast_patch = models.JSONField(null=True, blank=True)
    upcast_function = models.CharField(max_length=300, blank=True, default="")
    # The project's last event position when this version was registered: later events of
    # the type were validated against it (earlier ones have an older shape).
    since_position = models.BigIntegerField(default=0)
    actor = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project", "name", "version"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "name", "version"], name="one_event_type_version"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"
