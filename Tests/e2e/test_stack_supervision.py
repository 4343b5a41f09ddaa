"""Supervision in the stack: stuck requests get 504 and a fresh worker; a worker that keeps dying stops the stack."""
import re
import time

from conftest import free_port
from stack_support import Stack, copy_app, field, get, pool_block, stack_config


def test_a_request_stuck_past_timeout_gets_504_and_the_worker_is_replaced(gantry, tmp_path):
    copy_app(tmp_path)
    port = free_port()
    config = stack_config(port, pool_block(workers=1).replace("timeout 30s;", "timeout 1s;"))
    stack = Stack(gantry, tmp_path, config)
    try:
        pid = field(get(port, "/")[1], "pid")
        status, _ = get(port, "/slow?5", timeout=15)
        assert status == 504
        deadline = time.monotonic() + 20
        answer = get(port, "/")
        while time.monotonic() < deadline and (answer[0] != 200 or field(answer[1], "pid") == pid):
            time.sleep(0.2)
            answer = get(port, "/")
        assert answer[0] == 200 and field(answer[1], "pid") != pid
    finally:
        stack.stop()


def test_a_worker_that_keeps_dying_stops_the_stack_with_a_clear_error(gantry, tmp_path):
    copy_app(tmp_path, "stack_dies.py")
    port = free_port()
    stack = Stack(gantry, tmp_path, stack_config(port, pool_block(app="stack_dies:application", workers=1)),
                  expect_ready=False)
    try:
        code = stack.proc.wait(60)
        output = stack.output()
        assert code == 1, output
        assert "restarting a worker in" in output  # back-off between attempts
        assert re.search(r'\[emerg\] .*app pool "app": worker keeps dying', output), output
    finally:
        stack.stop()
