"""`worker_cpu_affinity`: which CPUs the front's event-loop threads may run on, read from /proc."""
import os
import pathlib
import signal
import time

from conftest import free_port

USABLE = sorted(os.sched_getaffinity(0))


def config(port, main=""):
    return f"""
{main}
events {{}}
http {{
    access_log off;
    server {{
        listen 127.0.0.1:{port};
        return 200 "ok\\n";
    }}
}}
"""


def loop_cpus(pid):
    """Each event-loop thread's allowed CPUs, in loop order (threads are named NIO-ELT-G-#N)."""
    loops = []
    for task in pathlib.Path(f"/proc/{pid}/task").iterdir():
        name = (task / "comm").read_text().strip()
        if not name.startswith("NIO-ELT"):
            continue
        status = (task / "status").read_text()
        allowed = next(line.split(":", 1)[1].strip() for line in status.splitlines()
                       if line.startswith("Cpus_allowed_list"))
        loops.append((int(name.rsplit("#", 1)[1]), expand(allowed)))
    return [cpus for _, cpus in sorted(loops)]


def expand(cpu_list):
    cpus = []
    for part in cpu_list.split(","):
        first, _, last = part.partition("-")
        cpus.extend(range(int(first), int(last or first) + 1))
    return cpus


def started(start_gantry, main):
    port = free_port()
    process = start_gantry(config(port, main), [("127.0.0.1", port)])
    time.sleep(0.2)  # the loops are bound before the listener opens; /proc shows it at once
    return process, loop_cpus(process.proc.pid)


def test_one_loop_per_usable_cpu_is_bound_by_default(start_gantry):
    process, loops = started(start_gantry, f"worker_processes {len(USABLE)};")
    if len(USABLE) > 1:
        assert loops == [[cpu] for cpu in USABLE], process.output()
    else:
        assert loops == [USABLE]


def test_more_loops_than_cpus_stay_unbound_by_default(start_gantry):
    process, loops = started(start_gantry, f"worker_processes {len(USABLE) + 1};")
    assert loops == [USABLE] * (len(USABLE) + 1), process.output()


def test_off_leaves_every_loop_unbound(start_gantry):
    process, loops = started(start_gantry, f"worker_processes {len(USABLE)}; worker_cpu_affinity off;")
    assert loops == [USABLE] * len(USABLE), process.output()


def test_masks_bind_loops_in_order_and_the_last_mask_repeats(start_gantry):
    first, second = USABLE[0], USABLE[-1]
    width = second + 1

    def mask(cpu):
        return "".join("1" if bit == cpu else "0" for bit in reversed(range(width)))

    process, loops = started(start_gantry, f"worker_processes 3; worker_cpu_affinity {mask(second)} {mask(first)};")
    assert loops == [[second], [first], [first]], process.output()


def test_auto_wraps_over_the_usable_cpus(start_gantry):
    count = len(USABLE) + 1
    process, loops = started(start_gantry, f"worker_processes {count}; worker_cpu_affinity auto;")
    assert loops == [[USABLE[i % len(USABLE)]] for i in range(count)], process.output()


def test_a_reload_says_loop_changes_wait_for_a_restart(start_gantry):
    port = free_port()
    main = f"error_log stderr notice; worker_processes {len(USABLE)};"
    process = start_gantry(config(port, main), [("127.0.0.1", port)])
    before = loop_cpus(process.proc.pid)
    process.config_path.write_text(config(port, main + " worker_cpu_affinity off;"))
    process.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "take effect at restart" not in process.output():
        assert time.monotonic() < deadline, process.output()
        time.sleep(0.1)
    assert loop_cpus(process.proc.pid) == before
    assert process.proc.poll() is None
