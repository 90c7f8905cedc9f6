"""Cutting LSP frames out of a byte stream: what vscode-jsonrpc accepts is read, the rest is
skipped up to the next header, and no length makes the parser wait or hold more than a bound."""

from __future__ import annotations

import asyncio
import os

from server import memory, transport
from server.memory import release_free_memory
from server.transport import FrameParser


def body(number: int) -> bytes:
    return b'{"id": %d}' % number


def framed(number: int, header: bytes = b"Content-Length: %d") -> bytes:
    return header % len(body(number)) + b"\r\n\r\n" + body(number)


def bodies_of(parser: FrameParser, data: bytes = b"") -> list[bytes]:
    parser.feed(data)
    found = []
    while (found_body := parser.next_body()) is not None:
        found.append(found_body)
    return found


def test_frames_are_cut_at_their_length_even_when_they_arrive_byte_by_byte():
    parser = FrameParser()
    stream = framed(1) + framed(2)
    found = [piece for byte in range(len(stream))
             for piece in bodies_of(parser, stream[byte:byte + 1])]
    assert found == [body(1), body(2)]


def test_header_names_in_any_case_and_blanks_around_the_value_are_accepted():
    stream = (framed(1, b"content-length: %d") + framed(2, b"Content-Length:%d")
              + framed(3, b"Content-Type: application/vscode-jsonrpc\r\nCONTENT-LENGTH:  %d "))
    assert bodies_of(FrameParser(), stream) == [body(1), body(2), body(3)]


def test_a_garbage_header_is_skipped_up_to_the_next_frame():
    parser = FrameParser()
    assert bodies_of(parser, b"Hello there\r\n\r\n" + framed(1)) == [body(1)]
    assert parser.framing_errors >= 1


def test_a_length_over_the_bound_is_refused_without_waiting_for_its_body():
    parser = FrameParser(max_message_bytes=1000)
    stream = b"Content-Length: 1000000000000\r\n\r\n" + b"x" * 50 + framed(1)
    assert bodies_of(parser, stream) == [body(1)]


def test_a_header_block_that_never_ends_is_dropped_at_its_bound():
    parser = FrameParser()
    assert bodies_of(parser, b"X-Noise: " + b"a" * 100_000) == []
    assert len(parser._buffer) < 100
    assert bodies_of(parser, b"\r\n\r\n" + framed(1)) == [body(1)]


def test_a_too_short_length_costs_only_its_own_frame():
    parser = FrameParser()
    stream = b"Content-Length: 3\r\n\r\n" + body(1) + framed(2)
    found = bodies_of(parser, stream)
    assert found[-1] == body(2)


def test_a_rejected_body_gives_back_the_frame_it_swallowed():
    parser = FrameParser()
    too_long = b"Content-Length: %d\r\n\r\n" % (len(body(1)) + len(framed(2))) + body(1)
    (swallowing,) = bodies_of(parser, too_long + framed(2))
    parser.reject(swallowing)
    assert bodies_of(parser) == [body(2)]


def test_a_body_that_stops_arriving_is_abandoned_for_the_frame_inside_it():
    parser = FrameParser()
    assert bodies_of(parser, b"Content-Length: 500\r\n\r\n" + body(1) + framed(2)) == []
    assert parser.awaiting_body
    parser.abandon_body()
    assert bodies_of(parser) == [body(2)]
    assert not parser.awaiting_body


def test_a_zero_length_frame_does_not_eat_the_next_one():
    parser = FrameParser()
    (empty,) = bodies_of(parser, b"Content-Length: 0\r\n\r\n")
    parser.reject(empty)
    assert bodies_of(parser, framed(1)) == [body(1)]


def test_the_heap_is_trimmed_once_after_large_messages_not_after_small_ones(monkeypatch):
    """A huge didOpen leaves its parsed pieces freed but kept by the C heap: shortly after large
    messages the server gives the free pages back, once for a burst, never for small ones."""
    trims: list[float] = []
    monkeypatch.setattr(memory, "release_free_memory", lambda: trims.append(1.0) or True)
    monkeypatch.setattr(memory, "TRIM_DELAY_S", 0.2)
    large = b'{"text": "' + b"a" * transport.LARGE_MESSAGE_BYTES + b'"}'
    received: list[int] = []

    async def session() -> None:
        read_end, write_end = os.pipe()
        reading = asyncio.ensure_future(transport.read_frames(
            os.fdopen(read_end, "rb"), lambda data: received.append(len(data)) or True))
        with os.fdopen(write_end, "wb") as writer:
            def send(data: bytes) -> None:
                writer.write(b"Content-Length: %d\r\n\r\n" % len(data) + data)
                writer.flush()

            await asyncio.to_thread(send, body(1))
            await asyncio.sleep(0.5)
            assert trims == []
            await asyncio.to_thread(send, large)
            await asyncio.to_thread(send, large)
            for _ in range(100):
                if trims:
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)
        await asyncio.wait_for(reading, 10)

    asyncio.run(session())
    assert received == [len(body(1)), len(large), len(large)]
    assert trims == [1.0]


def test_freeing_the_heap_answers_where_the_c_library_can():
    assert isinstance(release_free_memory(), bool)
