"""The cluster off loopback: HTTPS with a certificate and key (served by Serve's proxy),
spoken to by the real WorkerClient and StatusPoll (what REAPER polls with), and the
refusal to serve plain HTTP to other computers without --plain-http."""

from __future__ import annotations

import datetime
import ipaddress
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("ray.serve", reason="Ray Serve is not installed; the cluster tests need the [cluster] extra "
                                        "(pip install 'acestep-dcc[cluster]')")

from test_cluster import SHORT, ClusterProcess  # noqa: E402
from worker_fixtures import REPO_ROOT  # noqa: E402

from acestep_core.client import StatusPoll, WorkerClient  # noqa: E402
from acestep_core.errors import WorkerUnreachable  # noqa: E402
from acestep_core.jobs import DONE  # noqa: E402
from acestep_core.request import GenerationRequest  # noqa: E402


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (and localhost) and its key, as a studio's own CA would make."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "acestep-dcc test cluster")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                               x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                                  critical=False)
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cluster.crt", folder / "cluster.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tls")
    cert, key = self_signed(folder)
    process = ClusterProcess(tmp_path_factory.mktemp("tls-cluster-home"), "--tls-cert", str(cert), "--tls-key",
                             str(key), replicas=1, ca_file=cert)
    process.client = process.start()
    yield process
    process.stop()


def test_the_cluster_serves_https_to_the_client_and_the_status_poll(tls_cluster, tmp_path):
    client = tls_cluster.client
    assert client.url == f"https://127.0.0.1:{tls_cluster.port}"
    job = client.submit(GenerationRequest(**SHORT))
    poll = StatusPoll(client, job.id, interval=0.05)
    deadline = time.monotonic() + 120
    while not (poll.poll() and poll.latest.finished):
        assert time.monotonic() < deadline, "the status poll never saw the end"
        time.sleep(0.02)
    assert poll.latest.status == DONE
    poll.close()
    fetched = client.download(job.id, 0, tmp_path)
    assert fetched.stat().st_size > 1000


def test_a_client_that_does_not_trust_the_certificate_is_told_why(tls_cluster):
    stranger = WorkerClient(tls_cluster.client.url, tls_cluster.client.token)  # the system's CAs only
    with pytest.raises(WorkerUnreachable, match="certificate is not trusted.*ACESTEP_DCC_CA_FILE"):
        stranger.health()


def test_plain_http_to_the_https_port_gets_no_answer(tls_cluster):
    plain = WorkerClient(f"http://127.0.0.1:{tls_cluster.port}", tls_cluster.client.token)
    assert not plain.alive()


def cluster_up(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "acestep_core", "cluster", "up", *args], cwd=REPO_ROOT,
                          env=dict(os.environ), capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("args,needle", [
    (["--host", "0.0.0.0"], "--tls-cert and --tls-key for HTTPS, or --plain-http"),
    (["--tls-cert", "cert.pem"], "needs both --tls-cert and --tls-key"),
    (["--tls-cert", "no-such.pem", "--tls-key", "no-such.key"], "is not a file"),
    (["--replicas", "3", "--max-replicas", "2"], "below --replicas 3"),
])
def test_unsafe_or_impossible_flags_are_refused_before_ray_starts(args, needle):
    refused = cluster_up(*args)
    assert refused.returncode == 2 and needle in refused.stderr and "Traceback" not in refused.stderr
