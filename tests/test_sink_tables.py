"""Whose a pipeline's sink table is: a table continust did not create is refused unless the
operator lists it, another project's stays refused after its pipeline goes, a reset deletes
rows only in the pipeline's own table, and a record whose table was dropped blocks nothing."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.urls import reverse

from continust.log.projects import create_project, create_stream
from continust.models import Pipeline, SinkTable
from continust.pipelines import control, options, specs
from continust.pipelines.runner import Outcome, run_pipeline
from tests.pipelines_support import write_events
from tests.test_user_pipelines import counts_spec, table_rows

pytestmark = pytest.mark.django_db

THEIR_ROW = ('["x","y"]', 1, 2)


def foreign_table(name="theirs"):
    """A table another application keeps in the same database, with a row of its own."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE {name} (stream TEXT, type TEXT, start_ms BIGINT, end_ms BIGINT, "
            "fire BIGINT, events BIGINT, total DOUBLE PRECISION, "
            "PRIMARY KEY (stream, type, start_ms))"
        )
        cursor.execute(f"INSERT INTO {name} VALUES ('x', 'y', 1, 2, 1, 5, 5.0)")


def refused(spec, project, name="counts"):
    with pytest.raises(specs.InvalidSpec) as caught:
        control.create_from_spec(project, name, spec)
    assert not Pipeline.objects.filter(project=project, name=name).exists()
    return caught.value.path, str(caught.value)


def legacy(project, table, name="legacy"):
    """A pipeline whose spec names ``table`` without taking it (one made before tables were
    recorded, or a table that changed after the spec was checked)."""
    return Pipeline.objects.create(
        project=project, name=name, definition="spec", params={}, spec=counts_spec(table=table)
    )


def run_fails(pipeline):
    assert run_pipeline(pipeline.pk, until_caught_up=True, enable=True) == Outcome.FAILED
    pipeline.refresh_from_db()
    assert pipeline.epoch == 0
    return pipeline.error


def test_an_existing_table_continust_did_not_create_is_refused(project):
    write_events([create_stream(project, "s")], 50, seed=1)
    foreign_table()
    path, message = refused(counts_spec(table="theirs"), project)
    assert path == "/sink/table/name"
    assert "table theirs exists and was not created by continust" in message
    assert "CONTINUST_PIPELINE_ADOPT_TABLES" in message
    # A view is no way round it: a view writes into some other table.
    with connection.cursor() as cursor:
        cursor.execute("CREATE VIEW seen AS SELECT * FROM theirs")
    assert "table seen exists" in refused(counts_spec(table="seen"), project)[1]
    # At run time too: the spec was checked when the table was not there yet.
    error = run_fails(legacy(project, "theirs"))
    assert "SinkRefused: table theirs exists and was not created by continust" in error
    assert list(table_rows("theirs")) == [THEIR_ROW] and not SinkTable.objects.exists()


def test_a_listed_table_is_adopted_by_the_first_project_only(project, settings):
    write_events([create_stream(project, "s")], 200, seed=2)
    foreign_table()
    settings.CONTINUST_PIPELINE_ADOPT_TABLES = ["theirs"]
    pipeline = control.create_from_spec(project, "counts", counts_spec(table="theirs"))
    record = SinkTable.objects.get(name="theirs")
    assert record.adopted and record.project == project and record.pipeline == "counts"
    assert run_pipeline(pipeline.pk, until_caught_up=True, enable=True) == Outcome.CAUGHT_UP
    assert THEIR_ROW in table_rows("theirs") and len(table_rows("theirs")) > 1

    other = create_project("other", "Other")
    write_events([create_stream(other, "s")], 50, seed=3)
    path, message = refused(counts_spec(table="theirs"), other)
    assert path == "/sink/table/name" and "belongs to another project" in message
    assert "counts" not in message.replace("theirs", "")  # the other project's names stay its own
    assert "SinkRefused: table theirs belongs to another project" in run_fails(
        legacy(other, "theirs")
    )


def test_the_setting_is_read_from_the_environment_and_checked(monkeypatch):
    monkeypatch.setenv("CONTINUST_PIPELINE_ADOPT_TABLES", "theirs, legacy_counts")
    assert options.adopt_tables() == {"theirs", "legacy_counts"}
    monkeypatch.setenv("CONTINUST_PIPELINE_ADOPT_TABLES", "theirs,public.Theirs")
    with pytest.raises(ImproperlyConfigured, match="'public.Theirs' is not a table name"):
        options.adopt_tables()


def test_a_table_stays_its_projects_after_the_pipeline_is_deleted(project):
    write_events([create_stream(project, "s")], 200, seed=4)
    pipeline = control.create_from_spec(project, "counts", counts_spec())
    record = SinkTable.objects.get(name="stream_counts")
    assert not record.adopted and record.project == project
    run_pipeline(pipeline.pk, until_caught_up=True, enable=True)
    control.delete_pipeline(pipeline)
    rows = table_rows("stream_counts")
    assert rows

    other = create_project("other", "Other")
    write_events([create_stream(other, "s")], 50, seed=5)
    path, message = refused(counts_spec(), other)
    assert path == "/sink/table/name" and "belongs to another project" in message
    theirs = legacy(other, "stream_counts")
    assert "belongs to another project" in run_fails(theirs)
    assert table_rows("stream_counts") == rows
    theirs.delete()
    # Listing it does not hand it over: the setting is for tables continust did not create.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CONTINUST_PIPELINE_ADOPT_TABLES", "stream_counts")
        assert refused(counts_spec(), other)[0] == "/sink/table/name"

    # The project itself may take it up again, under another name too.
    again = control.create_from_spec(project, "recount", counts_spec())
    assert SinkTable.objects.get(name="stream_counts").pipeline == "recount"
    # ... but not while a pipeline of the project writes it.
    path, message = refused(counts_spec(), project, name="third")
    assert message.endswith("table stream_counts is written by pipeline recount")
    assert again.pk


def test_a_stale_record_does_not_block_creating_the_table_again(project):
    control.delete_pipeline(control.create_from_spec(project, "counts", counts_spec()))
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE stream_counts")
    other = create_project("other", "Other")
    pipeline = control.create_from_spec(other, "counts", counts_spec())
    record = SinkTable.objects.get(name="stream_counts")
    assert record.project == other and not record.adopted
    assert table_rows("stream_counts") == {}
    assert run_pipeline(pipeline.pk, until_caught_up=True, enable=True) == Outcome.CAUGHT_UP


def test_reset_deletes_rows_only_in_the_pipelines_own_table(project, settings):
    write_events([create_stream(project, "s")], 200, seed=6)
    foreign_table()
    stranger = legacy(project, "theirs")
    assert control.reset_plan(stranger)["keeps"].startswith("table theirs, which is not this")
    control.reset(stranger)
    assert table_rows("theirs") == {THEIR_ROW: (1, 5, 5.0)}

    # Another pipeline's table: its record names that pipeline, not this one.
    mine = control.create_from_spec(project, "counts", counts_spec())
    run_pipeline(mine.pk, until_caught_up=True, enable=True)
    rows = table_rows("stream_counts")
    copycat = legacy(project, "stream_counts", name="copycat")
    control.reset(copycat)
    assert table_rows("stream_counts") == rows
    copycat.delete()

    assert control.reset_plan(mine) == {"clears": "every row of table stream_counts", "keeps": ""}
    control.reset(mine)
    assert table_rows("stream_counts") == {}

    # Adopted: its own now, so a reset empties it.
    settings.CONTINUST_PIPELINE_ADOPT_TABLES = ["theirs"]
    stranger.delete()
    adopted = control.create_from_spec(project, "adopter", counts_spec(table="theirs"))
    control.reset(adopted)
    assert table_rows("theirs") == {}


def test_the_reset_confirmation_names_the_table_it_empties(client, alice, project):
    write_events([create_stream(project, "s")], 50, seed=7)
    control.create_from_spec(project, "counts", counts_spec())
    foreign_table()
    legacy(project, "theirs")
    client.force_login(alice)
    asked = client.get(reverse("pipeline-reset", args=["acme", "counts"])).content.decode()
    assert "deletes every row of table stream_counts" in asked
    asked = client.get(reverse("pipeline-reset", args=["acme", "legacy"])).content.decode()
    assert "leaves table theirs" in asked and "its rows stay" in asked
    client.post(reverse("pipeline-reset", args=["acme", "legacy"]), {"confirm": "yes"})
    assert table_rows("theirs") == {THEIR_ROW: (1, 5, 5.0)}
