"""The handle: a resolved configuration plus the services built from it, and how it becomes current.

``init()`` resolves the configuration, makes a :class:`Handle` current (the one
``ContextVar`` in :mod:`asynctasq.context`) and returns it. Services (drivers) are built
on first use and closed by ``await handle.aclose()`` / ``async with``.

``configured()`` makes a new handle current for one block and restores the previous one
on exit, even on error. Its rule: the block's code overrides are merged over the current
handle's code overrides (its ``init(...)``/``configured(...)`` arguments), and the result
is resolved again over the environment and ``.env`` as they are now, so environment
variables and ``.env`` still apply below code. The block's handle keeps the current
handle's ``event_emitters`` and ``.env`` path. With no current handle it resolves like
``init(overrides)``.

Where it is visible: the ContextVar is copied into asyncio tasks created inside the block
and into ``asyncio.to_thread``; it is not seen by sibling tasks created before the block,
by plain ``threading.Thread`` targets or by child processes. Two asyncio tasks each in
their own ``configured()`` block do not see each other's handle.

Nesting: blocks must end innermost first, as ``with`` statements and ``ExitStack`` do.
Ending an outer block by hand while a block entered after it is still active raises
``RuntimeError`` and changes nothing (end the inner block first). A handle made current by
``init()`` inside a block is replaced by the block's previous handle when the block ends.

Event emitters (``init(event_emitters=[...])``, ``configured(..., event_emitters=[...])``):
an emitter is any object with an ``emit(event)`` method, either a coroutine function
(awaited) or a plain function (called in a worker thread), or a function itself (``async
def`` or ``def``) taking the event; ``event`` is a task or worker event record. ``init()``
raises ``TypeError`` naming the emitter when it is neither. An emitter that fails never
fails a task or a dispatch (SPEC §6). :meth:`Handle.event_bus` is the running loop's
:class:`~asynctasq.events.bus.EventBus` over these plus the configured ones
(:func:`~asynctasq.events.build.build_emitters`); ``aclose()`` delivers what it holds,
then calls the ``close()`` of the emitters built from the configuration and of those given
to this handle (a ``configured()`` block's handle does not close the emitters it inherits).
"""

from __future__ import annotations

import asyncio
import logging
import os
import weakref
from collections.abc import AsyncGenerator, Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from asynctasq import context
from asynctasq.config import sources
from asynctasq.config.records import Config
from asynctasq.config.resolve import explicit_layer, resolve_layers
from asynctasq.config.sources import Layer, merge
from asynctasq.errors import ConfigError

if TYPE_CHECKING:
    from asynctasq.drivers.protocol import Driver
    from asynctasq.events.bus import EventBus

NOT_INITIALISED = (
    "asynctasq is not initialised: call asynctasq.init() first (in a FastAPI app that calls "
    "it in its lifespan, add app.add_middleware(AsyncTasQMiddleware) from "
    "asynctasq.integrations.fastapi: requests run in other asyncio tasks, which do not see "
    "the lifespan's handle)"
)

logger = logging.getLogger("asynctasq")


def checked_emitters(emitters: Iterable[Any]) -> tuple[Any, ...]:
    """Return ``emitters`` as a tuple after checking that each is an emitter.

    An emitter has a callable ``emit``, or is a function (``def`` or ``async def``, or
    another callable object that is not a class) taking the event.

    Args:
        emitters: an iterable of event emitters (see this module's docstring).

    Raises:
        TypeError: ``emitters`` is a string or itself one emitter (not a list of them), or
            an item is not an emitter (a class rather than an instance, or an object
            without ``emit``); the message names its position and type.

    """
    if isinstance(emitters, str | bytes):
        raise TypeError(
            f"event_emitters must be a list of emitters, got a {type(emitters).__name__}"
        )
    if callable(getattr(emitters, "emit", None)) or (
        callable(emitters) and not isinstance(emitters, Iterable)
    ):
        name = getattr(emitters, "__name__", None) or type(emitters).__name__
        shown = name if not callable(getattr(emitters, "emit", None)) else f"{name}(...)"
        message = f"event_emitters must be a list of emitters, got one {type(emitters).__name__}"
        raise TypeError(message + f"; pass [{shown}]")
    found = tuple(emitters)
    for index, emitter in enumerate(found):
        if isinstance(emitter, type):
            raise TypeError(
                f"event_emitters[{index}] is the class {emitter.__name__}, not an emitter: "
                f"pass an instance, {emitter.__name__}()"
            )
        if not callable(getattr(emitter, "emit", None)) and not callable(emitter):
            raise TypeError(
                f"event_emitters[{index}] ({type(emitter).__name__} object) is not an event "
                "emitter: it needs an emit(event) method (async def or def), or pass a "
                "function taking the event"
            )
    return found


class _Services:
    """The services one event loop's code built through a handle, and the lock guarding them."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.drivers: dict[str, Driver] = {}
        self.bus: EventBus | None = None
        self.loop_end: AsyncGenerator[None, None] | None = None

    def watch_loop_end(self) -> None:
        """Close the drivers still open when the running loop ends (``asyncio.run()`` returns).

        An async generator started on the loop: the loop's ``shutdown_asyncgens()`` (called
        by ``asyncio.run()`` and ``asyncio.Runner``) closes it, and its ``finally`` closes
        the drivers, so a script that dispatches from ``asyncio.run(main())`` after a
        module-level ``init()`` leaves no connection open. (The event bus delivers its own
        events then; see :mod:`asynctasq.events.bus`.)
        """
        if self.loop_end is not None:
            return
        guard = _close_at_loop_end(weakref.ref(self))
        try:
            guard.asend(None).send(None)  # runs it to its yield; the loop now tracks it
        except StopIteration:
            self.loop_end = guard
        except Exception:  # the loop is already shutting down
            logger.debug("cannot register for the end of the loop", exc_info=True)

    async def close_drivers(self) -> None:
        """Close the drivers left open (at the loop's end); failures are logged."""
        built = list(self.drivers.values())
        self.drivers.clear()
        for driver in reversed(built):
            try:
                await driver.close()
            except Exception as exc:
                logger.warning(
                    "closing the %s driver at the end of the event loop failed: %s",
                    getattr(driver, "name", type(driver).__name__),
                    exc,
                )


async def _close_at_loop_end(ref: weakref.ref[_Services]) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        services = ref()
        if services is not None and services.drivers:
            await services.close_drivers()


class Handle:
    """A resolved configuration, the event emitters, and the services built from them.

    Attributes:
        config: the frozen :class:`~asynctasq.config.records.Config`.
        provenance: ``{dotted leaf path: source text}`` for every setting.
        event_emitters: the extra emitters given to ``init()`` (or inherited by a
            ``configured()`` block's handle).
        tortoise_config: Tortoise ORM configuration (``config.tortoise_orm``), or ``None``.
        process_pool_manager: the ``ProcessPoolManager`` a worker on this handle uses for
            process-pool tasks, set by ``set_default_manager()``; ``None`` (the default,
            also for a ``configured()`` block's handle): the worker builds one from
            ``config.process_pool``.

    Services belong to the event loop that built them: ``driver()`` called under another
    running loop builds that loop's own driver, and a loop's services are dropped when the
    loop has closed. ``aclose()`` closes the services of the running loop; what is still
    open when a loop ends through ``asyncio.run()`` (or any runner calling
    ``loop.shutdown_asyncgens()``) is closed then: queued events are delivered and the
    drivers closed, so ``init()`` at module level and ``asyncio.run(main())`` work.

    """

    def __init__(
        self,
        config: Config,
        provenance: Mapping[str, str] | None = None,
        *,
        event_emitters: Iterable[Any] = (),
        explicit: Layer | None = None,
        env_file: str | os.PathLike[str] | None = ".env",
        closes_emitters: bool = True,
    ) -> None:
        self.config = config
        self.provenance: Mapping[str, str] = dict(provenance or {})
        self.event_emitters: tuple[Any, ...] = checked_emitters(event_emitters)
        self._closes_emitters = closes_emitters  # False: inherited from the enclosing handle
        self.tortoise_config: dict[str, Any] | None = config.tortoise_orm
        self.process_pool_manager: Any = None
        self._explicit = explicit if explicit is not None else sources.overrides(config)
        self._env_file = env_file
        self._services: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Services] = (
            weakref.WeakKeyDictionary()
        )
        self._last: tuple[weakref.ref[asyncio.AbstractEventLoop], _Services] | None = None
        self._in_active_block = False  # made current by a configured() block not yet ended

    def __repr__(self) -> str:
        return f"Handle(driver={self.config.driver!r})"

    def _for_running_loop(self) -> _Services:
        loop = asyncio.get_running_loop()
        last = self._last
        if last is not None and last[0]() is loop:  # the common case: one loop, every call
            return last[1]
        for other in [k for k in self._services if k.is_closed()]:
            del self._services[other]
        found = self._services.get(loop)
        if found is None:
            found = self._services[loop] = _Services()
        self._last = (weakref.ref(loop), found)
        return found

    async def driver(self, name: str | None = None) -> Driver:
        """Return the opened driver ``name`` (default ``config.driver``), building it once.

        Concurrent first calls build and open a single driver; later calls return it.

        Args:
            name: a driver name (``"redis"``, ``"memory"``, ...); ``None`` means
                ``config.driver``.

        Returns:
            The opened driver, cached per name for this handle and event loop.

        Raises:
            ConfigError: the driver is unknown, unavailable, a setting it requires is not set
                (``postgres.dsn`` for ``postgres``), or its client is not installed.
            DriverError: opening the connection failed.

        """
        key = self.config.driver if name is None else name
        services = self._for_running_loop()
        found = services.drivers.get(key)
        if found is not None:
            return found
        async with services.lock:
            found = services.drivers.get(key)
            if found is None:
                from asynctasq import drivers  # layer 3; imports broker clients lazily

                found = drivers.build_driver(self.config, key, provenance=self.provenance)
                await found.open()
                services.drivers[key] = found
                services.watch_loop_end()
        return found

    def event_bus(self) -> EventBus:
        """Return the running loop's event bus, building it on first use.

        Cheap after the first call; producers check ``bus.wants()`` before building an
        event. Must be called with a running event loop.
        """
        services = self._for_running_loop()
        bus = services.bus
        if bus is None:
            from asynctasq.events.build import build_bus

            bus = services.bus = build_bus(
                self.config, self.event_emitters, close_extra=self._closes_emitters
            )
        return bus

    def has_services(self) -> bool:
        """Return whether any service built through this handle is still open."""
        return any(
            s.drivers or s.bus is not None
            for loop, s in self._services.items()
            if not loop.is_closed()
        )

    async def aclose(self) -> None:
        """Close every service this handle built on the running loop, newest first.

        The event bus goes first: events still queued are delivered (a few seconds at
        most), then the emitters built from the configuration and those given to this
        handle are closed (their ``close()``, if any; a failure is logged, not raised).

        Every service is closed even when one fails; then the failure is raised (an
        ``ExceptionGroup`` when several failed). The handle stays usable: a later
        ``driver()`` builds anew.
        """
        services = self._for_running_loop()
        async with services.lock:
            built = list(services.drivers.values())
            services.drivers.clear()
            bus, services.bus = services.bus, None
        if bus is not None:
            await bus.aclose()  # delivers what it holds; never raises
        failures: list[Exception] = []
        for driver in reversed(built):
            try:
                await driver.close()
            except Exception as exc:
                failures.append(exc)
        if len(failures) == 1:
            raise failures[0]
        if failures:
            raise ExceptionGroup("closing asynctasq services failed", failures)

    async def __aenter__(self) -> Handle:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def init(
    config: Mapping[str, Any] | Config | None = None,
    *,
    event_emitters: Iterable[Any] | None = None,
    tortoise_config: dict[str, Any] | None = None,
    env_file: str | os.PathLike[str] | None = ".env",
) -> Handle:
    """Resolve the configuration, make a new handle current, and return it.

    Args:
        config: code settings (highest precedence): a nested mapping, records in it
            (``{"redis": RedisConfig(db=5)}`` sets exactly the keys passed), or a ``Config``.
        event_emitters: extra event emitters: objects with an ``emit(event)`` method
            (coroutine or plain function), or functions taking the event (see this
            module's docstring). Their ``close()`` is called when this handle closes.
        tortoise_config: Tortoise ORM configuration; same as ``config={"tortoise_orm": ...}``.
        env_file: the ``.env`` file (default ``.env`` in the current directory); ``None``
            reads none; a missing file is fine.

    Returns:
        The new current :class:`Handle`. A previously current handle is not closed.

    Raises:
        ConfigError: listing every problem in the configuration. A setting required only by
            one driver (``postgres.dsn``) is checked when that driver is first used.
        TypeError: an event emitter is neither an object with ``emit`` nor a function.

    Source: seed/configuration.md "init()"; SPEC §1.

    """
    emitters = checked_emitters(event_emitters or ())
    explicit = explicit_layer(config)
    if tortoise_config is not None:
        explicit = merge(explicit, sources.overrides({"tortoise_orm": tortoise_config}))
    resolved = resolve_layers(explicit, env_file=env_file)
    handle = Handle(
        resolved.config,
        resolved.provenance,
        event_emitters=emitters,
        explicit=explicit,
        env_file=env_file,
    )
    context.make_current(handle)
    return handle


def current_handle() -> Handle:
    """Return the current handle.

    Raises:
        ConfigError: no handle is current ("call asynctasq.init() first"; the message also
            names the FastAPI middleware, the usual cause in a web app).

    """
    handle = context.current()
    if handle is None:
        raise ConfigError(NOT_INITIALISED)
    found: Handle = handle
    return found


_CLOSING: set[asyncio.Task[None]] = set()


def _close_without_awaiting(handle: Handle) -> None:
    """Close ``handle``'s services at the end of a sync ``with`` block.

    With a running loop in this thread the close is scheduled on it; with none, services of
    loops that are neither running nor closed are closed by running those loops; services
    of closed loops are already gone.
    """
    if not handle.has_services():
        return
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        for idle in [k for k in handle._services if not k.is_closed() and not k.is_running()]:
            idle.run_until_complete(handle.aclose())
        return
    task = loop.create_task(handle.aclose())
    _CLOSING.add(task)
    task.add_done_callback(_CLOSING.discard)


class Configured:
    """The context manager :func:`configured` returns; usable with ``with`` and ``async with``.

    Each object is entered once at a time; the handle is resolved when the block is entered.
    """

    def __init__(self, explicit: Layer, event_emitters: tuple[Any, ...] | None = None) -> None:
        self._explicit = explicit
        self._emitters = event_emitters
        self._active: tuple[Any, Any, Handle] | None = None

    def _enter(self) -> Handle:
        if self._active is not None:
            raise RuntimeError("this configured() block is already active; call configured() again")
        parent = context.current()
        base: Layer = Layer()
        env_file: str | os.PathLike[str] | None = ".env"
        emitters: tuple[Any, ...] = ()
        if isinstance(parent, Handle):
            base, env_file, emitters = parent._explicit, parent._env_file, parent.event_emitters
        explicit = merge(base, self._explicit)
        resolved = resolve_layers(explicit, env_file=env_file)
        handle = Handle(
            resolved.config,
            resolved.provenance,
            event_emitters=emitters if self._emitters is None else self._emitters,
            explicit=explicit,
            env_file=env_file,
            closes_emitters=self._emitters is not None,
        )
        self._active = (context.make_current(handle), parent, handle)
        handle._in_active_block = True
        return handle

    def _leave(self) -> Handle:
        if self._active is None:
            raise RuntimeError("this configured() block was exited without being entered")
        token, parent, handle = self._active
        current = context.current()
        if current is not handle and isinstance(current, Handle) and current._in_active_block:
            raise RuntimeError(
                "configured() blocks exited out of order: a block entered inside this one is "
                "still active; exit the innermost block first"
            )
        self._active = None
        handle._in_active_block = False
        try:
            context.restore(token)
        except ValueError:  # exited in another context than it was entered in
            context.make_current(parent)
        return handle

    def __enter__(self) -> Handle:
        return self._enter()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _close_without_awaiting(self._leave())

    async def __aenter__(self) -> Handle:
        return self._enter()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._leave().aclose()


def configured(
    overrides: Mapping[str, Any] | Config | None = None,
    /,
    *,
    event_emitters: Iterable[Any] | None = None,
    **settings: Any,
) -> Configured:
    """Return a context manager making a handle with these overrides current inside its block.

    ``with configured({'driver': 'memory'}) as handle:`` or, keyword form,
    ``async with configured(driver='memory', task_defaults={'max_attempts': 1}):``.
    Keyword settings are applied over the positional ones. The previous handle is restored
    on exit, also on error; the block's services are closed on exit (``async with`` awaits
    it; a sync ``with`` schedules it on the running loop, if any). The overrides are merged
    over the current handle's code overrides and resolved again over the environment and
    ``.env`` (the rule in this module's docstring).

    Args:
        overrides: code settings, as for :func:`init`.
        event_emitters: event emitters for the block, as for :func:`init`; they replace
            the current handle's inside the block and are closed when it ends. ``None``
            (the default): the block keeps the current handle's (not closed by the block).
        **settings: more code settings by top-level key.

    Returns:
        A :class:`Configured` context manager yielding the new :class:`Handle`.

    Raises:
        ConfigError: on entering the block, listing every problem.
        TypeError: an event emitter is not one (as for :func:`init`).

    """
    emitters = None if event_emitters is None else checked_emitters(event_emitters)
    return Configured(merge(sources.overrides(overrides), sources.overrides(settings)), emitters)
