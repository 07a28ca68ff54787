"""Branch moves form a hash chain per branch, and a head moves only with a recorded move.

Each move gets ``prev_hash`` and ``hash`` (``continust.log.canonical.move_hash``: the move's
branch, old and new heads by version digest, reason, actor and time, chained to the
previous move of the branch); each branch keeps the hash of its last move. The moves
already recorded are chained here, in the order they were made. From now on the
database refuses an UPDATE of a branch that no recorded move explains, and any DELETE.
"""

from django.db import migrations, models

from continust.log import canonical
from continust.log import triggers


def chain_moves(apps, schema_editor):
    Branch = apps.get_model("continust", "Branch")
    BranchMove = apps.get_model("continust", "BranchMove")
    Version = apps.get_model("continust", "Version")
    for branch in Branch.objects.order_by("pk").iterator():
        moves = list(BranchMove.objects.filter(branch_id=branch.pk).order_by("pk"))
        heads = {m.new_head_id for m in moves} | {m.old_head_id for m in moves if m.old_head_id}
        digests = dict(Version.objects.filter(pk__in=heads).values_list("pk", "digest"))
        previous = canonical.GENESIS
        for move in moves:
            move.prev_hash = previous
            move.hash = canonical.move_hash(
                previous, branch=branch.name,
                old_head=digests[move.old_head_id] if move.old_head_id else None,
                new_head=digests[move.new_head_id], reason=move.reason, actor=move.actor,
                at=move.at)
            previous = move.hash
        BranchMove.objects.bulk_update(moves, ["prev_hash", "hash"], batch_size=1000)
        Branch.objects.filter(pk=branch.pk).update(move_hash=previous)


def keep(apps, schema_editor):
    pass


class Migration(migrations.Migration):

    dependencies = [
        ('continust', '0009_leaner_log_rows'),
    ]

    operations = [
        migrations.RunPython(triggers.removing, triggers.installing(branches=False)),
        migrations.AddField(
            model_name='branch',
            name='move_hash',
            field=models.CharField(default='0' * 64, max_length=64),
        ),
        migrations.AddField(
            model_name='branchmove',
            name='prev_hash',
            field=models.CharField(default='0' * 64, max_length=64),
        ),
        migrations.AddField(
            model_name='branchmove',
            name='hash',
            field=models.CharField(default='0' * 64, max_length=64),
        ),
        migrations.AlterField(
            model_name='branchmove',
            name='at',
            field=models.DateTimeField(),
        ),
        migrations.RunPython(chain_moves, keep),
        migrations.RunPython(triggers.installing(), triggers.removing),
    ]
