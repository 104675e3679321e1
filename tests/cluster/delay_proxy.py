#!/usr/bin/env python3
"""A TCP proxy that slows one client's connection to the API server, for the fencing test.

    delay_proxy.py LISTEN_PORT TARGET_HOST TARGET_PORT SOURCE_IP CONTROL_FILE LOG_FILE

Listens on 127.0.0.1:LISTEN_PORT and passes every connection on to TARGET_HOST:TARGET_PORT from
SOURCE_IP, so that the API server's audit log tells this client's requests from everyone else's.
Bytes pass through unchanged (TLS included): the proxy only decides when. CONTROL_FILE holds the
mode, read every 50 ms:

    pass         forward at once
    delay SECS   forward each chunk SECS after it arrived, in order, in both directions
    stall        hold everything until the mode changes (then as that mode says)

A chunk is timed by the mode at its arrival, like a slow link: what was sent before the client
went away is still delivered. LOG_FILE gets one line per connection and per chunk forwarded
towards the server, with the wall-clock time it arrived and left.
"""
import asyncio
import sys
import time

listen_port, target_host, target_port, source_ip, control_file, log_file = sys.argv[1:7]
mode = ("pass", 0.0)
changed = asyncio.Event()
log = open(log_file, "a", buffering=1)


def read_mode():
    try:
        words = open(control_file).read().split()
    except OSError:
        return ("pass", 0.0)
    if not words:
        return ("pass", 0.0)
    if words[0] == "delay" and len(words) > 1:
        return ("delay", float(words[1]))
    return (words[0], 0.0)


async def watch_control():
    global mode, changed
    while True:
        new = read_mode()
        if new != mode:
            mode = new
            log.write(f"{time.time():.6f} mode {mode[0]} {mode[1]}\n")
            changed.set()
            changed = asyncio.Event()
        await asyncio.sleep(0.05)


async def pump(conn, direction, reader, writer):
    queue = asyncio.Queue()

    async def deliver():
        while True:
            item = await queue.get()
            if item is None:
                break
            arrived, data, kind, delay = item
            while kind == "stall" and mode[0] == "stall":
                await changed.wait()
            if kind == "stall":  # released: timed by the mode it was released into
                kind, delay = mode
            wait = arrived + delay - time.time() if kind == "delay" else 0
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            if direction == "up":
                log.write(f"{arrived:.6f} {time.time():.6f} conn {conn} up {len(data)}\n")
            try:
                await writer.drain()
            except OSError:
                break
        try:
            writer.write_eof()
        except OSError:
            pass

    deliverer = asyncio.ensure_future(deliver())
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            queue.put_nowait((time.time(), data, mode[0], mode[1]))
    except OSError:
        pass
    queue.put_nowait(None)
    await deliverer


connections = 0


async def handle(client_reader, client_writer):
    global connections
    connections += 1
    conn = connections
    try:
        server_reader, server_writer = await asyncio.open_connection(
            target_host, int(target_port), local_addr=(source_ip, 0))
    except OSError as e:
        log.write(f"{time.time():.6f} conn {conn} connect failed: {e}\n")
        client_writer.close()
        return
    log.write(f"{time.time():.6f} conn {conn} open\n")
    await asyncio.gather(pump(conn, "up", client_reader, server_writer),
                         pump(conn, "down", server_reader, client_writer))
    server_writer.close()
    client_writer.close()
    log.write(f"{time.time():.6f} conn {conn} closed\n")


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", int(listen_port))
    asyncio.ensure_future(watch_control())
    async with server:
        await server.serve_forever()


asyncio.run(main())
