"""the metadata store: jobs, events, heartbeats, counts, datasets, registry, usage

Revision ID: 0001
Revises: (none)
Create Date: 2026-12-05 08:02:21.875359
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('datasets',
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('published', sa.Boolean(), nullable=False),
    sa.Column('manifest_key', sa.String(length=300), nullable=False),
    sa.Column('manifest_sha256', sa.String(length=64), nullable=False),
    sa.Column('windows', sa.BigInteger(), nullable=False),
    sa.Column('size_bytes', sa.BigInteger(), nullable=False),
    sa.Column('created_s', sa.Float(), nullable=False),
    sa.Column('writer_job_id', sa.String(length=64), nullable=True),
    sa.Column('writer_claimed_s', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_datasets'))
    )
    with op.batch_alter_table('datasets', schema=None) as batch_op:
        batch_op.create_index('ix_datasets_published_name', ['published', 'name'], unique=False)

    op.create_table('job_counts',
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('count', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('kind', 'state', name=op.f('pk_job_counts'))
    )
    op.create_table('jobs',
    sa.Column('job_id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('spec_version', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('owner', sa.String(length=128), nullable=False),
    sa.Column('dataset', sa.String(length=128), nullable=False),
    sa.Column('architecture', sa.String(length=64), nullable=False),
    sa.Column('create_time', sa.String(length=40), nullable=False),
    sa.Column('created_s', sa.Float(), nullable=False),
    sa.Column('update_s', sa.Float(), nullable=False),
    sa.Column('spec', sa.Text(), nullable=False),
    sa.Column('status', sa.Text(), nullable=False),
    sa.Column('control', sa.Text(), nullable=False),
    sa.Column('last_sequence', sa.Integer(), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('lease_owner', sa.String(length=128), nullable=True),
    sa.Column('lease_token', sa.BigInteger(), nullable=False),
    sa.Column('lease_expires_s', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('job_id', name=op.f('pk_jobs'))
    )
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.create_index('ix_jobs_dataset_kind', ['dataset', 'kind'], unique=False)
        batch_op.create_index('ix_jobs_kind_architecture_created', ['kind', 'architecture', 'created_s', 'job_id'],
                              unique=False)
        batch_op.create_index('ix_jobs_kind_created', ['kind', 'created_s', 'job_id'], unique=False)
        batch_op.create_index('ix_jobs_kind_dataset_created', ['kind', 'dataset', 'created_s', 'job_id'], unique=False)
        batch_op.create_index('ix_jobs_kind_owner_state', ['kind', 'owner', 'state'], unique=False)
        batch_op.create_index('ix_jobs_kind_state_created', ['kind', 'state', 'created_s', 'job_id'], unique=False)

    op.create_table('meta',
    sa.Column('key', sa.String(length=128), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_meta'))
    )
    op.create_table('models',
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('created_s', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_models'))
    )
    op.create_table('usage',
    sa.Column('identity_id', sa.String(length=128), nullable=False),
    sa.Column('stored_bytes', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('identity_id', name=op.f('pk_usage'))
    )
    op.create_table('job_events',
    sa.Column('job_id', sa.String(length=64), nullable=False),
    sa.Column('sequence', sa.Integer(), nullable=False),
    sa.Column('type', sa.String(length=16), nullable=False),
    sa.Column('time_s', sa.Float(), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.job_id'], name=op.f('fk_job_events_job_id_jobs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('job_id', 'sequence', name=op.f('pk_job_events'))
    )
    op.create_table('job_heartbeats',
    sa.Column('job_id', sa.String(length=64), nullable=False),
    sa.Column('rank', sa.Integer(), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('beat', sa.BigInteger(), nullable=False),
    sa.Column('time_s', sa.Float(), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.job_id'], name=op.f('fk_job_heartbeats_job_id_jobs'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('job_id', 'rank', name=op.f('pk_job_heartbeats'))
    )
    op.create_table('model_aliases',
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('alias', sa.String(length=128), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['name'], ['models.name'], name=op.f('fk_model_aliases_name_models'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('name', 'alias', name=op.f('pk_model_aliases'))
    )
    with op.batch_alter_table('model_aliases', schema=None) as batch_op:
        batch_op.create_index('ix_model_aliases_name_version', ['name', 'version'], unique=False)
        batch_op.create_index('ix_model_aliases_alias', ['alias'], unique=False)

    op.create_table('model_versions',
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('architecture', sa.String(length=64), nullable=False),
    sa.Column('dataset', sa.String(length=128), nullable=False),
    sa.Column('source_job_id', sa.String(length=64), nullable=False),
    sa.Column('weights_key', sa.String(length=300), nullable=False),
    sa.Column('weights_sha256', sa.String(length=64), nullable=False),
    sa.Column('create_time', sa.String(length=40), nullable=False),
    sa.Column('card', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['name'], ['models.name'], name=op.f('fk_model_versions_name_models'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('name', 'version', name=op.f('pk_model_versions'))
    )
    with op.batch_alter_table('model_versions', schema=None) as batch_op:
        batch_op.create_index('ix_model_versions_dataset', ['dataset'], unique=False)
        batch_op.create_index('ix_model_versions_weights_key', ['weights_key'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('model_versions', schema=None) as batch_op:
        batch_op.drop_index('ix_model_versions_weights_key')
        batch_op.drop_index('ix_model_versions_dataset')

    op.drop_table('model_versions')
    with op.batch_alter_table('model_aliases', schema=None) as batch_op:
        batch_op.drop_index('ix_model_aliases_name_version')
        batch_op.drop_index('ix_model_aliases_alias')

    op.drop_table('model_aliases')
    op.drop_table('job_heartbeats')
    op.drop_table('job_events')
    op.drop_table('usage')
    op.drop_table('models')
    op.drop_table('meta')
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_jobs_kind_state_created')
        batch_op.drop_index('ix_jobs_kind_owner_state')
        batch_op.drop_index('ix_jobs_kind_dataset_created')
        batch_op.drop_index('ix_jobs_kind_created')
        batch_op.drop_index('ix_jobs_kind_architecture_created')
        batch_op.drop_index('ix_jobs_dataset_kind')

    op.drop_table('jobs')
    op.drop_table('job_counts')
    with op.batch_alter_table('datasets', schema=None) as batch_op:
        batch_op.drop_index('ix_datasets_published_name')

    op.drop_table('datasets')
