"""A TCP relay on loopback that delays every chunk by a one-way time in
each direction: distance for bench/distance.sh (this kernel has no netem).
Order is kept and throughput is not limited. The tests use the same relay
in Rust (tests/common/delay.rs).

    python3 bench/delay_relay.py TARGET_PORT ONE_WAY_MS   # prints its port
"""
import heapq
import socket
import sys
import threading
import time


def pump(src, dst, delay):
    queue, cv, done = [], threading.Condition(), [False]

    def read():
        seq = 0
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            with cv:
                if not data:
                    done[0] = True
                else:
                    heapq.heappush(queue, (time.monotonic() + delay, seq, data))
                    seq += 1
                cv.notify()
            if not data:
                return

    def write():
        while True:
            with cv:
                while not queue and not done[0]:
                    cv.wait()
                if not queue:
                    break
                due, _, data = heapq.heappop(queue)
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            try:
                dst.sendall(data)
            except OSError:
                break
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    threading.Thread(target=read, daemon=True).start()
    threading.Thread(target=write, daemon=True).start()


def main():
    target, delay = int(sys.argv[1]), int(sys.argv[2]) / 1000
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    print(listener.getsockname()[1], flush=True)
    while True:
        client, _ = listener.accept()
        server = socket.create_connection(("127.0.0.1", target))
        for s in (client, server):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        pump(client, server, delay)
        pump(server, client, delay)


if __name__ == "__main__":
    main()
