"""Trading from the shell, through the real console script: exit codes, JSON shapes, journal."""

from __future__ import annotations

import contextlib
import json

import pytest

from trii_term.paths import Paths

from .conftest import FAST, run_cli


def test_order_confirm_fill_and_list(paths: Paths) -> None:
    paths.config_file.write_text(FAST)
    unconfirmed = run_cli("order", "buy", "10", "AAPL", paths=paths)
    assert unconfirmed.returncode == 3 and "confirm with --yes" in unconfirmed.stderr
    assert (
        "expected price" in unconfirmed.stderr and "max_order_notional" in unconfirmed.stderr
    )  # the preview
    done = run_cli("order", "buy", "10", "AAPL", "--yes", "--json", paths=paths)
    assert done.returncode == 0, done.stderr
    order = json.loads(done.stdout)
    assert order["status"] == "filled" and order["qty"] == "10" and order["filled_qty"] == "10"
    assert order["side"] == "buy" and order["type"] == "market" and order["tif"] == "day"
    assert order["client_order_id"].startswith("tt-") and order["created_at"].endswith("Z")
    price = order["avg_fill_price"]
    assert len(price.split(".")[1]) == 2  # exact cents, as a string

    positions = json.loads(run_cli("positions", "--json", paths=paths).stdout)
    assert [(p["symbol"], p["qty"], p["avg_cost"], p["currency"]) for p in positions] == [
        ("AAPL", "10", price, "USD")
    ]
    account = json.loads(run_cli("account", "--json", paths=paths).stdout)
    assert set(account) >= {"cash", "equity", "buying_power", "currency"}
    assert account["fees"] == "1.00"
    journal = json.loads(run_cli("journal", "--json", paths=paths).stdout)
    events = [e["event"] for e in journal]
    assert events == [
        *("intent", "checked", "rejected"),  # the unconfirmed attempt: every rule passed, not sent
        *("intent", "checked", "submitted", "acknowledged", "filled"),
    ]
    assert journal[2]["detail"]["error"] == "not confirmed"
    assert {c["rule"] for c in journal[1]["detail"]["checks"]} >= {"max_order_notional", "max_position_pct"}
    assert all(e["source"] == "cli" for e in journal) and journal[-1]["order_id"] == order["id"]


def test_refusals_and_bad_input_have_their_own_exit_codes(paths: Paths) -> None:
    paths.config_file.write_text(FAST + '[risk]\nrestricted = ["IBM"]\n')
    refused = run_cli("order", "buy", "1", "IBM", "--yes", paths=paths)
    assert refused.returncode == 4 and "restricted" in refused.stderr
    broker_no = run_cli("order", "sell", "5", "MSFT", "--yes", paths=paths)
    assert broker_no.returncode == 4 and "short selling is off" in broker_no.stderr
    for bad, says in (
        (("order", "buy", "0", "AAPL"), "quantity '0': must be above 0"),
        (("order", "buy", "1", "AAPL", "--limit", "abc"), "limit 'abc': is not a number"),
        (("order", "buy", "1", "AAPL", "--stop", "400", "--tif", "ioc"), "ioc applies to market and limit"),
    ):
        result = run_cli(*bad, paths=paths)
        assert result.returncode == 2 and says in result.stderr, result.stderr
    journal = json.loads(run_cli("journal", "--json", paths=paths).stdout)
    assert [e["event"] for e in journal] == ["intent", "rejected", "intent", "checked", "rejected"]
    assert journal[1]["detail"]["rule"] == "restricted"
    assert not any(e["event"] == "submitted" for e in journal)  # nothing invalid was sent


def test_a_resting_order_lists_as_open_and_cancels(paths: Paths) -> None:
    paths.config_file.write_text(FAST)
    placed = run_cli(
        "order", "buy", "1", "AAPL", "--limit", "420", "--tif", "gtc", "--yes", "--json", paths=paths
    )
    assert placed.returncode == 0, placed.stderr
    oid = json.loads(placed.stdout)["id"]
    open_orders = json.loads(run_cli("orders", "--open", "--json", paths=paths).stdout)
    assert [(o["id"], o["status"], o["limit_price"]) for o in open_orders] == [(oid, "new", "420.00")]
    canceled = run_cli("cancel", oid, paths=paths)
    assert canceled.returncode == 0 and f"Canceled {oid}" in canceled.stdout
    assert json.loads(run_cli("orders", "--open", "--json", paths=paths).stdout) == []
    again = run_cli("cancel", oid, paths=paths)
    assert again.returncode == 2 and "not working" in again.stderr


def test_three_cli_orders_on_a_fresh_store_get_three_ids(paths: Paths) -> None:
    """Found: three `trii-term order buy 1 AAPL --yes` all returned P000001, each overwriting the
    last (orders listed 1 of 3; fills pointed at the wrong order)."""
    paths.config_file.write_text(FAST)
    ids = []
    for _ in range(3):
        done = run_cli("order", "buy", "1", "AAPL", "--yes", "--json", paths=paths)
        assert done.returncode == 0, done.stderr
        ids.append(json.loads(done.stdout)["id"])
    assert ids == ["P000001", "P000002", "P000003"]
    orders = json.loads(run_cli("orders", "--json", paths=paths).stdout)
    assert sorted(o["id"] for o in orders) == ids
    account = json.loads(run_cli("account", "--json", paths=paths).stdout)
    assert account["fees"] == "3.00"  # the session's fee model, also from the CLI


def test_replace_flatten_and_cancel_all_from_the_shell(paths: Paths) -> None:
    paths.config_file.write_text(FAST)
    bought = run_cli("order", "buy", "20", "AAPL", "--yes", "--json", paths=paths)
    assert bought.returncode == 0, bought.stderr
    price = json.loads(bought.stdout)["avg_fill_price"]
    below = f"{float(price) * 0.95:.2f}"
    rest = run_cli("order", "buy", "5", "AAPL", "lmt", below, "gtc", "--yes", "--json", paths=paths)
    assert rest.returncode == 0, rest.stderr
    oid = json.loads(rest.stdout)["id"]

    # replace: the same confirmation as an order, the same rules
    unconfirmed = run_cli("replace", oid, "qty", "6", paths=paths)
    assert unconfirmed.returncode == 3 and "confirm with --yes" in unconfirmed.stderr
    refused = run_cli("replace", oid, "qty", "50000", "--yes", paths=paths)
    assert refused.returncode == 4 and "max_order" in refused.stderr, refused.stderr
    done = run_cli("replace", oid, "qty", "6", "--yes", "--json", paths=paths)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["qty"] == "6"
    journal = json.loads(run_cli("journal", "--json", paths=paths).stdout)
    replaced = [
        e for e in journal if e["order_id"] == oid and e["event"] in ("intent", "rejected", "replaced")
    ]
    assert all(e["source"] == "cli" for e in replaced) and replaced[-1]["event"] == "replaced"

    # flatten: cancels AAPL's working order first, then sells the 20 at market
    flat = run_cli("flatten", "AAPL", "--yes", "--json", paths=paths)
    assert flat.returncode == 0, flat.stderr
    assert json.loads(run_cli("positions", "--json", paths=paths).stdout) == []
    assert json.loads(run_cli("orders", "--open", "--json", paths=paths).stdout) == []
    none = run_cli("cancel", "--all", paths=paths)
    assert none.returncode == 0 and "No working orders" in none.stdout
    nothing = run_cli("reverse", "AAPL", "--yes", paths=paths)
    assert nothing.returncode == 2 and "no position in AAPL" in nothing.stderr


def test_an_unknown_symbol_names_the_symbol_not_a_flag(paths: Paths) -> None:
    paths.config_file.write_text(FAST)
    out = run_cli("order", "buy", "1", "ZZZZ", "--yes", paths=paths)
    assert out.returncode == 2 and "unknown symbol ZZZZ" in out.stderr, out.stderr
    assert "--symbols" not in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize("key", ["\x04", "\x03", "n\r"], ids=["ctrl+d", "ctrl+c", "n"])
def test_on_a_terminal_anything_but_y_sends_nothing(paths: Paths, key: str) -> None:
    """Found: ctrl+c at "Send it? [y/N]" left the process holding the store until Enter, then
    printed a traceback; ctrl+d said "unexpected error (EOFError)"."""
    import os
    import select
    import subprocess
    import time

    from .conftest import trii_term_exe

    paths.config_file.write_text(FAST)
    master, slave = os.openpty()
    cmd = [*trii_term_exe(), "--config", str(paths.config_file), "--data-dir", str(paths.data_dir)]
    proc = subprocess.Popen(
        [*cmd, "order", "buy", "1", "AAPL"], stdin=slave, stdout=slave, stderr=slave, start_new_session=True
    )
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + 30
    while b"Send it?" not in seen:
        assert time.monotonic() < deadline, seen
        if select.select([master], [], [], 0.2)[0]:
            seen += os.read(master, 4096)
    if key == "\x03":
        os.kill(proc.pid, 2)  # what ctrl+c at the terminal sends
    else:
        os.write(master, key.encode())
    code = proc.wait(timeout=10)
    with contextlib.suppress(OSError):
        while select.select([master], [], [], 0.2)[0]:
            seen += os.read(master, 4096)
    os.close(master)
    text = seen.decode(errors="replace")
    assert code == 3 and "Not sent" in text and "Traceback" not in text, text
    journal = json.loads(run_cli("journal", "--json", paths=paths).stdout)
    assert journal[-1]["event"] == "rejected" and journal[-1]["detail"]["error"] == "not confirmed"
    assert not any(e["event"] == "submitted" for e in journal)


def test_the_side_may_be_typed_in_capitals_and_a_change_needs_its_value(paths: Paths) -> None:
    """Found: `order BUY 5 AAPL` was refused (the palette takes it); `replace ID qty` said
    "'qty' is not understood"."""
    paths.config_file.write_text(FAST)
    done = run_cli("order", "BUY", "1", "AAPL", "--tif", "DAY", "--yes", "--json", paths=paths)
    assert done.returncode == 0, done.stderr
    order = json.loads(done.stdout)
    assert (order["side"], order["qty"], order["tif"], order["status"]) == ("buy", "1", "day", "filled")
    lacking = run_cli("replace", "P000001", "qty", paths=paths)
    assert lacking.returncode == 2
    assert lacking.stderr.strip() == (
        "trii-term replace: qty needs a number after it, e.g. order replace P000001 qty 120"
    )


def test_flatten_all_with_nothing_to_flatten_is_not_an_error(paths: Paths) -> None:
    """Found: it said "no positions to flatten" on stderr, as an error would."""
    paths.config_file.write_text(FAST)
    nothing = run_cli("flatten", "all", "--yes", paths=paths)
    assert (nothing.returncode, nothing.stdout, nothing.stderr) == (0, "No positions to flatten.\n", "")
    as_json = run_cli("flatten", "all", "--yes", "--json", paths=paths)
    assert (as_json.returncode, json.loads(as_json.stdout), as_json.stderr) == (0, [], "")
    assert run_cli("order", "buy", "3", "AAPL", "--yes", paths=paths).returncode == 0
    flat = run_cli("flatten", "all", "--yes", "--json", paths=paths)  # with a position: sold at market
    assert flat.returncode == 0, flat.stderr
    assert [(o["side"], o["qty"], o["status"]) for o in json.loads(flat.stdout)] == [("sell", "3", "filled")]
    assert json.loads(run_cli("positions", "--json", paths=paths).stdout) == []
