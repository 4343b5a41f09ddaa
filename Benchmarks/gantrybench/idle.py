"""Idle keep-alive connections: open N connections to a loopback port, make one request on
each (so that each is a real HTTP keep-alive connection, not a half-open socket), then
leave them idle while the caller measures the server's memory."""

from __future__ import annotations

import asyncio
import resource
from dataclasses import dataclass


@dataclass
class IdleResult:
    wanted: int
    opened: int       # connected and answered 200 on their one request
    failed: int
    still_open: int   # still open (not closed by the server) when counted
    first_error: str


def raise_fd_limit(wanted: int) -> int:
    """Raise this process's soft open-files limit (children inherit it) as far as allowed."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < wanted:
        try:  # root may raise the hard limit too (the servers need as many descriptors as the client)
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, wanted))
            soft, hard = wanted, wanted
        except (ValueError, OSError):
            pass
    target = hard if hard != resource.RLIM_INFINITY else max(soft, wanted)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


async def _one(port: int, path: str, semaphore: asyncio.Semaphore, timeout: float):
    async with semaphore:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
        try:
            writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
            status_line, *header_lines = head.decode("latin-1").split("\r\n")
            if " 200 " not in status_line + " ":
                raise RuntimeError(status_line)
            length = 0
            for line in header_lines:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
                if name.strip().lower() == "connection" and "close" in value.lower():
                    raise RuntimeError("server answered Connection: close")
            await asyncio.wait_for(reader.readexactly(length), timeout)
        except BaseException:
            writer.close()
            raise
        return reader, writer


def _is_open(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    """The server has not closed it (the transport keeps reading, so a close shows as EOF)."""
    return not reader.at_eof() and not writer.is_closing()


async def _hold(port: int, path: str, count: int, while_idle, batch: int, timeout: float) -> IdleResult:
    semaphore = asyncio.Semaphore(batch)
    tasks = [asyncio.create_task(_one(port, path, semaphore, timeout)) for _ in range(count)]
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    connections = [o for o in outcomes if isinstance(o, tuple)]
    errors = [o for o in outcomes if not isinstance(o, tuple)]
    first_error = f"{type(errors[0]).__name__}: {errors[0]}" if errors else ""
    try:
        await asyncio.sleep(1.0)  # let the server settle (buffers released, timers armed)
        await asyncio.get_running_loop().run_in_executor(None, while_idle)
        still_open = sum(1 for reader, writer in connections if _is_open(reader, writer))
    finally:
        for _, writer in connections:
            writer.close()
    return IdleResult(wanted=count, opened=len(connections), failed=len(errors), still_open=still_open,
                      first_error=first_error[:160])


def hold_idle_connections(port: int, path: str, count: int, while_idle, batch: int = 256,
                          timeout: float = 10.0) -> IdleResult:
    """Open `count` keep-alive connections, call `while_idle()` while they sit idle, close them."""
    raise_fd_limit(count + 1024)
    return asyncio.run(_hold(port, path, count, while_idle, batch, timeout))
