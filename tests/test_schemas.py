"""The event-type registry: registering, validating appends, the project's setting,
evolving a type with an upcaster, and reading old events in the newest shape."""

from __future__ import annotations

import pytest
from django.test import override_settings

from continust.audit import event_types
from continust.audit.integrity import verify
from continust.core.errors import InvalidEvent
from continust.log.store import NewEvent, append
from continust.models import AuditRecord, Event, Project
from continust.schemas.registry import InvalidSchema, TypeExists, newest_schema
from continust.schemas.upcasting import upcast, upcast_events
from continust.schemas.validation import SchemaViolation

pytestmark = pytest.mark.django_db

ORDER = {
    "type": "object",
    "properties": {
        "amount": {"type": "integer", "minimum": 0},
        # The customer names the data subject (docs/erasure.md): it stays readable.
        "customer": {"type": "string", "x-personal": True, "x-subject": True},
    },
    "required": ["amount"],
}
ORDER_V2 = {
    "type": "object",
    "properties": {"cents": {"type": "integer"}, "customer": {"type": "string"}},
    "required": ["cents"],
}
TO_CENTS = [{"op": "move", "from": "/amount", "path": "/cents"}]


def order(**payload):
    return NewEvent(type="order.placed", payload=payload)


def fresh(project):
    return Project.objects.get(pk=project.pk)


def test_it_registers_a_type_and_keeps_its_schema_as_given(project, stream):
    row = event_types.register(project, "order.placed", ORDER, actor="alice")
    assert row.version == 1
    assert newest_schema(fresh(project), "order.placed") == ORDER
    assert newest_schema(fresh(project), "other") is None
    record = AuditRecord.objects.filter(project=project).latest("event__position").event
    assert record.type == "schema.registered" and record.actor == "alice"
    assert record.payload["type"] == "order.placed"


def test_it_refuses_a_schema_the_metaschema_refuses(project):
    with pytest.raises(InvalidSchema, match="not valid"):
        event_types.register(project, "t", {"type": "nonsense"}, actor="alice")
    with pytest.raises(InvalidSchema, match="only"):
        event_types.register(
            project, "t", {"$schema": "http://json-schema.org/draft-07/schema#"}, actor="a"
        )
    with pytest.raises(InvalidSchema, match="object"):
        event_types.register(project, "t", [1], actor="alice")
    assert fresh(project).schema_revision == 0


def test_it_refuses_to_register_a_type_twice_or_one_of_the_logs_own(project):
    event_types.register(project, "t", {}, actor="alice")
    with pytest.raises(TypeExists):
        event_types.register(project, "t", {}, actor="alice")
    with pytest.raises(InvalidEvent, match="log's own"):
        event_types.register(project, "continust.merge", {}, actor="alice")


def test_a_payload_that_does_not_fit_is_refused_with_its_path_and_nothing_is_written(
    project, stream
):
    event_types.register(project, "order.placed", ORDER, actor="alice")
    stream = fresh_stream(stream)
    append(stream, [order(amount=3)])
    before = Event.objects.filter(stream=stream).count()
    with pytest.raises(SchemaViolation) as caught:
        append(stream, [order(amount=4), order(amount="five")])
    assert caught.value.path == "/amount"
    assert caught.value.index == 1
    assert "/amount" in str(caught.value)
    with pytest.raises(SchemaViolation) as caught:
        append(stream, [order(customer="x")])
    assert caught.value.path == ""
    assert "amount" in str(caught.value)
    assert Event.objects.filter(stream=stream).count() == before


def fresh_stream(stream):
    """The stream as a surface loads it: with its project, as it is now."""
    return type(stream).objects.select_related("project").get(pk=stream.pk)


def test_unregistered_types_are_allowed_by_default_and_refused_when_set(project, stream):
    event_types.register(project, "order.placed", ORDER, actor="alice")
    append(fresh_stream(stream), [NewEvent(type="note", payload={"any": 1})])
    event_types.set_unregistered_types(project, "refuse", actor="alice")
    with pytest.raises(SchemaViolation, match="not registered"):
        append(fresh_stream(stream), [NewEvent(type="note", payload={"any": 2})])
    append(fresh_stream(stream), [order(amount=1)])
    event_types.set_unregistered_types(project, "allow", actor="alice")
    append(fresh_stream(stream), [NewEvent(type="note", payload={"any": 3})])
    changes = Event.objects.filter(stream__name="_audit", type="schema.unregistered_types")
    assert [e.payload["to"] for e in changes.order_by("seq")] == ["refuse", "allow"]


def test_a_refusing_project_without_types_refuses_every_type(project, stream):
    event_types.set_unregistered_types(project, "refuse", actor="alice")
    with pytest.raises(SchemaViolation):
        append(fresh_stream(stream), [NewEvent(type="note", payload={})])


def test_evolving_upcasts_old_events_on_read_and_leaves_the_stored_ones(project, stream):
    event_types.register(project, "order.placed", ORDER, actor="alice")
    (old,) = append(fresh_stream(stream), [order(amount=3, customer="c")]).versions
    stored_hash = Event.objects.get(pk=old.event.pk).hash
    event_types.evolve(project, "order.placed", ORDER_V2, patch=TO_CENTS, actor="alice")
    project = fresh(project)
    with pytest.raises(SchemaViolation, match="/cents|cents"):
        append(fresh_stream(stream), [order(amount=4)])
    (new,) = append(
        fresh_stream(stream), [NewEvent(type="order.placed", payload={"cents": 500})]
    ).versions
    event = Event.objects.get(pk=old.event.pk)
    read = upcast(project, event)
    assert read.stored == {"amount": 3, "customer": "c"}
    assert read.payload == {"cents": 3, "customer": "c"}
    assert (read.from_version, read.to_version) == (1, 2)
    newer = upcast(project, Event.objects.get(pk=new.event.pk))
    assert newer.payload == {"cents": 500} and not newer.changed
    assert [e.payload for e in upcast_events(project, [event])] == [{"cents": 3, "customer": "c"}]
    assert Event.objects.get(pk=old.event.pk).payload == {"amount": 3, "customer": "c"}
    assert Event.objects.get(pk=old.event.pk).hash == stored_hash
    assert verify(project).ok


@override_settings(CONTINUST_UPCASTER_MODULES=["tests.upcasters_support"])
def test_a_registered_function_upcasts(project, stream):
    event_types.register(project, "order.placed", ORDER, actor="alice")
    (old,) = append(fresh_stream(stream), [order(amount=3)]).versions
    event_types.evolve(
        project,
        "order.placed",
        ORDER_V2,
        function="tests.upcasters_support.cents",
        actor="alice",
    )
    assert upcast(fresh(project), old.event).payload == {"cents": 300}


def test_an_evolution_needs_a_valid_upcaster(project):
    event_types.register(project, "order.placed", ORDER, actor="alice")
    with pytest.raises(InvalidEvent, match="one upcaster"):
        event_types.evolve(project, "order.placed", ORDER_V2, actor="alice")
    with pytest.raises(InvalidEvent, match="not valid"):
        event_types.evolve(
            project, "order.placed", ORDER_V2, patch=[{"op": "bogus"}], actor="alice"
        )
    with pytest.raises(InvalidEvent, match="no upcaster is registered"):
        event_types.evolve(project, "order.placed", ORDER_V2, function="os.system", actor="a")
    with pytest.raises(InvalidEvent, match="not registered"):
        event_types.evolve(project, "other", ORDER_V2, patch=TO_CENTS, actor="alice")
    assert fresh(project).event_types.count() == 1


def test_an_upcaster_that_fails_on_a_stored_event_is_refused_and_changes_nothing(project, stream):
    event_types.register(project, "order.placed", ORDER, actor="alice")
    append(fresh_stream(stream), [order(amount=3)])
    (second,) = append(fresh_stream(stream), [order(amount=4)]).versions
    revision = fresh(project).schema_revision
    records = AuditRecord.objects.count()
    typo = [{"op": "move", "from": "/nope", "path": "/cents"}]
    with pytest.raises(InvalidEvent, match=r"pricing #1 .*nothing was registered"):
        event_types.evolve(project, "order.placed", ORDER_V2, patch=typo, actor="alice")
    assert fresh(project).event_types.count() == 1
    assert fresh(project).schema_revision == revision
    assert AuditRecord.objects.count() == records
    read = upcast(fresh(project), Event.objects.get(pk=second.event.pk))
    assert read.payload == {"amount": 4}  # old events still read, as version 1
    # The refused registry was never cached: the right upcaster is the one read after it.
    event_types.evolve(project, "order.placed", ORDER_V2, patch=TO_CENTS, actor="alice")
    read = upcast(fresh(project), Event.objects.get(pk=second.event.pk))
    assert read.payload == {"cents": 4}


def test_a_project_without_types_looks_nothing_up(project, stream, django_assert_num_queries):
    append(stream, [NewEvent(type="note", payload={})])
    stream = fresh_stream(stream)
    with django_assert_num_queries(0):
        from continust.schemas.validation import check_payloads

        check_payloads(stream.project, [NewEvent(type="note", payload={})])


def test_validators_are_cached_per_revision(project, stream, django_assert_num_queries):
    from continust.schemas.validation import check_payloads

    event_types.register(project, "order.placed", ORDER, actor="alice")
    loaded = fresh(project)
    check_payloads(loaded, [order(amount=1)])
    with django_assert_num_queries(0):
        check_payloads(loaded, [order(amount=1)])
    event_types.evolve(project, "order.placed", ORDER_V2, patch=TO_CENTS, actor="alice")
    with pytest.raises(SchemaViolation):
        check_payloads(fresh(project), [order(amount=1)])


@pytest.fixture
def order_log(settings):
    from continust.projections import registry as projections
    from tests import projections_support as support

    settings.CONTINUST_PROJECTIONS = support.SETTING
    projections.reload()
    yield
    settings.CONTINUST_PROJECTIONS = []
    projections.reload()


def test_a_projection_reads_old_events_in_the_newest_shape(order_log, project, stream, monkeypatch):
    from continust.projections import control
    from continust.projections.runner import Outcome, run_projection
    from tests import projections_support as support

    seen = []
    monkeypatch.setattr(
        support.OrderLog,
        "apply",
        lambda self, entries, tables: seen.extend(e.event.payload for e in entries),
    )
    event_types.register(project, "order.placed", ORDER, actor="alice")
    append(fresh_stream(stream), [order(amount=3)])
    event_types.evolve(project, "order.placed", ORDER_V2, patch=TO_CENTS, actor="alice")
    append(fresh_stream(stream), [NewEvent(type="order.placed", payload={"cents": 7})])
    row = control.get_projection(fresh(project), "order_log")
    assert run_projection(row.pk, foreground=True) == Outcome.CAUGHT_UP
    assert seen == [{"cents": 3}, {"cents": 7}]
