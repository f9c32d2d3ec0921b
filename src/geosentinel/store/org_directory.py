"""The shared directory: which organisation lives in which region, and nothing else.

It is the only database every region's service instances share, so it holds no health data and no
personal data: an organisation's id, its name (unique across regions, for the CLI's ``--org NAME``) and
its region. Everything else about an organisation lives in its region's store.

One table, never altered since it was written, so it is created directly rather than through the
Alembic history of the region stores.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa

from geosentinel.model import Region
from geosentinel.store.base import StoreError
from geosentinel.store.schema import to_us

metadata = sa.MetaData()

org_regions = sa.Table(
    "org_regions",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("region", sa.String(8), nullable=False),
    sa.Column("created_us", sa.BigInteger, nullable=False),
)


class NameTaken(Exception):
    """Another organisation, in any region, already has this name."""


class OrgDirectory:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def migrate(self) -> None:
        if sa.inspect(self.engine).has_table("organisations"):
            # A store of the time before regions (or a region's store given as the directory): adding
            # the directory to it would mix tenants' data into the one database every region shares.
            raise StoreError(
                f"{self.engine.url.render_as_string()} holds organisations' data, so it cannot be the shared "
                "directory: give a new database URL (each region's store is derived from it), or point "
                "GEOSENTINEL_DB_EU / GEOSENTINEL_DB_CN at the existing stores"
            )
        metadata.create_all(self.engine, checkfirst=True)

    def add(self, name: str, region: Region) -> str:
        """Register a new organisation; return its id."""
        org_id = str(uuid.uuid4())
        # The directory's own creation stamp (not pipeline time): when the organisation was registered.
        values = {"id": org_id, "name": name, "region": region.value, "created_us": to_us(datetime.now(UTC))}
        try:
            with self.engine.begin() as connection:
                connection.execute(org_regions.insert().values(**values))
        except sa.exc.IntegrityError as exc:
            raise NameTaken(name) from exc
        return org_id

    def remove(self, org_id: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(org_regions.delete().where(org_regions.c.id == org_id))

    def region_of(self, org_id: str) -> Region | None:
        with self.engine.connect() as connection:
            value = connection.execute(
                sa.select(org_regions.c.region).where(org_regions.c.id == org_id)
            ).scalar()
        return None if value is None else Region(value)

    def by_name(self, name: str) -> tuple[str, Region] | None:
        with self.engine.connect() as connection:
            row = connection.execute(
                sa.select(org_regions.c.id, org_regions.c.region).where(org_regions.c.name == name)
            ).first()
        return None if row is None else (row.id, Region(row.region))

    def regions_in_use(self) -> list[Region]:
        with self.engine.connect() as connection:
            values = connection.execute(sa.select(org_regions.c.region).distinct()).scalars()
            return sorted(Region(v) for v in values)

    def close(self) -> None:
        self.engine.dispose()
