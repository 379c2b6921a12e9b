"""OTA chunks through the modem's receive path: the firmware's ATEngine + CellularPublisher (CMQTT
over the strict SIM7600 simulator, its RX bursts paced at 115200 baud and scaled) deliver a full
bundle of the real build on <prefix>/<id>/ota; telelogger.ota stages every chunk and the commit
installs it. At time_scale 1.0 (scripts run by hand) the 239 messages take 20.1 s: the UART is
the bottleneck, as ota_bundle.estimate says."""
import asyncio
import os
import sys
import time

import pytest

import mp_ota_kit as K
from at.engine import ATEngine
from core.compat import Clock
from net import cellular as NC
from peers.sim7600 import Sim7600, SimStream
from peers.sim7600_mqtt import LocalBroker
from telelogger import ota, otacmd

SCALE = 0.05
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts"))


@pytest.fixture(scope="module")
def real_bundle(tmp_path_factory):
    import build
    import ota_bundle as OB

    out = str(tmp_path_factory.mktemp("otasim") / "firmware")
    build.build(out=out)
    return OB, OB.make(out, 1)


def test_full_bundle_through_the_simulated_sim7600_rx_path(real_bundle, tmp_path):
    OB, bundle = real_bundle
    root = str(tmp_path) + "/"
    topic = "fm/%s/ota" % K.DEV
    msgs = [m for _, _, m in OB.chunks(bundle, K.KEY, K.DEV)]
    broker = LocalBroker()
    sim = Sim7600(powered=True, time_scale=SCALE, broker=broker)

    async def main():
        at = ATEngine(SimStream(sim), poll_ms=1)
        at.start()
        pub = NC.CellularPublisher(at, Clock(), client_id="ota1", host="broker.test", backoff_ms=20,
                                   modem_cfg={"poll_ms": 20})
        q = []
        ev = asyncio.Event()

        def on_msg(t_, p):
            if t_ == topic:
                q.append(bytes(p))
                ev.set()

        pub.on_message(on_msg)
        try:
            await pub.connect()
            await pub.subscribe(topic, 1)
            t = K.T(root)
            await otacmd.handle(t, "ota_begin", OB.begin_args(bundle, K.KEY, K.DEV))
            t0 = time.time()
            for m in msgs:
                broker.deliver(topic, m, 1)
            errs = []
            done = 0
            while done < len(msgs):
                if not q:
                    ev.clear()
                    await asyncio.wait_for(ev.wait(), 30)
                    continue
                e = ota.chunk(t, q.pop(0))
                if e:
                    errs.append(e)
                done += 1
            wall = time.time() - t0
            st = await otacmd.handle(t, "ota_status", {})
            return errs, st, await otacmd.handle(t, "ota_commit", {}), wall
        finally:
            at.stop()

    errs, st, r, wall = asyncio.run(main())
    assert errs == [] and st["state"] == "ready" and r["installed"] == 1, (errs, st)
    # every chunk of the bundle (239 messages for the 104 modules when FORMAT.md's figures were taken;
    # the count follows the build)
    assert sim.counters["rx_messages"] == len(msgs) == OB.estimate(bundle)[1], (sim.counters, len(msgs))
    uart_s = OB.estimate(bundle, per_chunk_ms=0)[0]
    assert wall >= uart_s * SCALE * 0.9, (wall, uart_s)  # the bursts were paced at the UART's rate
