"""SQLAlchemy models on PostgreSQL; table names unique to this test process (xdist-safe)."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import ForeignKey, func
from sqlalchemy.ext.asyncio import AsyncAttrs
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

SUFFIX = uuid.uuid4().hex[:10]


class Base(AsyncAttrs, DeclarativeBase):
    pass


class User(Base):
    __tablename__ = f"h18_user_{SUFFIX}"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    updated_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    orders: Mapped[list[Order]] = relationship(back_populates="user")


class Order(Base):
    __tablename__ = f"h18_order_{SUFFIX}"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey(User.id))
    user: Mapped[User] = relationship(back_populates="orders")


class Ticket(Base):
    """Composite primary key: (event, seat), a UUID and a text column."""

    __tablename__ = f"h18_ticket_{SUFFIX}"

    event: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    seat: Mapped[str] = mapped_column(primary_key=True)
    holder: Mapped[str]
