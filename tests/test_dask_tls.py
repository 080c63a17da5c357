"""eau2 on a TLS cluster: `dask scheduler` and `dask worker --preload eau2` as separate
processes that listen on tls:// only, with certificates from a throwaway CA made here.
read_sor, get, to_dask and run work with the certificate; without it the cluster refuses."""

import asyncio
import datetime
import ipaddress
import os
import ssl
import subprocess
import sys
import time

import dask
import pandas as pd
import pytest
from distributed import Client, Security
from distributed.comm import connect as comm_connect

import eau2_dask
from eau2 import Application, DataFrame, Key, read_sor
from tests.dask_clusters import RealCluster

REFUSAL_SECONDS = 3  # each refused connection gives up after this long

pytestmark = pytest.mark.timeout(120)


def _certificates(folder, name: str) -> tuple[str, str, str]:
    """A CA, and a certificate for 127.0.0.1 it signs, as files in `folder`: (CA, cert, key).
    One certificate serves every process (scheduler, workers, client), as Dask allows."""
    x509 = pytest.importorskip("cryptography.x509", reason="no `cryptography` to make TLS certificates")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def build(subject, issuer, public_key, signing_key, *extensions):
        now = datetime.datetime.now(datetime.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
        )
        for extension, critical in extensions:
            builder = builder.add_extension(extension, critical=critical)
        return builder.sign(signing_key, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = build(
        f"{name} CA", f"{name} CA", ca_key.public_key(), ca_key, (x509.BasicConstraints(True, None), True)
    )
    cert = build(
        f"{name} node",
        f"{name} CA",
        key.public_key(),
        ca_key,
        (x509.BasicConstraints(False, None), True),
        (x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False),
        (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), False),
    )
    files = folder / f"{name}-ca.pem", folder / f"{name}-cert.pem", folder / f"{name}-key.pem"
    files[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return tuple(str(file) for file in files)


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    return _certificates(tmp_path_factory.mktemp("tls"), "eau2-test")


@pytest.fixture(scope="module")
def cluster(tls, tmp_path_factory):
    log = tmp_path_factory.mktemp("tls-cluster") / "cluster.log"
    with RealCluster(log, workers=2, tls=tls) as running:
        yield running


def test_every_connection_is_tls(cluster):
    directory = cluster.directory()
    assert len(directory) == 2 and all(address.startswith("tls://") for address in directory)
    listeners = cluster.client.run(
        lambda dask_worker: [str(ear.contact_address) for ear in dask_worker.listeners]
    )
    assert all(address.startswith("tls://") for addresses in listeners.values() for address in addresses)


def test_read_sor_get_and_to_dask(cluster, tmp_path):
    path = tmp_path / "mixed.sor"
    path.write_bytes(
        b"".join(b'<%d> <%s> <"w%d">\n' % (i, b"" if i % 5 == 0 else b"%d.5" % i, i % 3) for i in range(3000))
    )
    client = cluster.client
    stored = eau2_dask.read_sor(str(path), client=client, blocksize=10_000)
    local = read_sor(path)
    assert stored.nchunks > 1 and {stored.chunk_home(i) for i in range(stored.nchunks)} == {0, 1}
    assert DataFrame(stored.to_arrow()) == local
    pd.testing.assert_frame_equal(stored.to_dask().compute().reset_index(drop=True), local.to_pandas())

    kv = eau2_dask.connect(client)
    kv.put(Key("tls-greeting", 1), b"hello over TLS")
    assert kv.get(Key("tls-greeting", 1)) == b"hello over TLS"
    kv.delete(Key("tls-greeting", 1))
    kv.delete(stored.key)


class Ring(Application):
    """Each node puts a value homed on itself and reads its neighbour's: node-to-node gets."""

    def run(self):
        me, n = self.this_node(), self.num_nodes()
        self.kv.put(Key(f"tls-ring-{me}", me), f"from node {me}".encode())
        return self.kv.get_and_wait(Key(f"tls-ring-{(me + 1) % n}", (me + 1) % n), timeout=30)


def test_run_gets_across_nodes(cluster):
    assert eau2_dask.run(Ring, client=cluster.client, timeout=60) == [b"from node 1", b"from node 0"]
    kv = eau2_dask.connect(cluster.client)
    for node in range(2):
        kv.delete(Key(f"tls-ring-{node}", node))


def _refused(address: str, error=OSError, match: str | None = None, security=None) -> None:
    """A `Client` of `address` fails with `error` (matching `match`), within the refusal time
    (plus slack for a loaded machine). The client runs in a loop of its own, and is closed
    here: a synchronous one that fails to connect keeps its IO loop thread, and its
    __del__ may run later in another client's loop thread and deadlock it."""

    async def attempt():
        client = Client(address, security=security, timeout=REFUSAL_SECONDS, asynchronous=True)
        try:
            await client
        finally:
            await client.close()

    started = time.monotonic()
    with pytest.raises(error, match=match):
        asyncio.run(attempt())
    assert time.monotonic() - started < REFUSAL_SECONDS + 5


def _handshake(address: str, context: ssl.SSLContext | None) -> None:
    """Connect to a Dask server at `address` as a client with TLS `context`, and ask who it is."""

    async def identify():
        comm = await comm_connect(address, timeout=REFUSAL_SECONDS, ssl_context=context)
        try:
            await comm.write({"op": "identity"})
            assert "type" in await comm.read()
        finally:
            comm.abort()

    asyncio.run(asyncio.wait_for(identify(), 2 * REFUSAL_SECONDS))


def _context(ca: str, chain: tuple[str, str] | None = None) -> ssl.SSLContext:
    """A client's TLS context: trusts `ca`, shows the certificate and key of `chain`, if any."""
    context = ssl.create_default_context(cafile=ca)
    context.check_hostname = False  # as Dask: the CA's signature is the check
    if chain:
        context.load_cert_chain(*chain)
    return context


def test_refused_without_credentials(cluster, tls, tmp_path):
    address = cluster.address
    ca, cert, key = tls
    stranger_ca, stranger_cert, stranger_key = _certificates(tmp_path, "stranger")
    # No TLS settings: Dask's client refuses to connect to tls:// at once.
    _refused(address, TypeError, "ssl_context")
    # Plain TCP to the TLS port: the scheduler resets the connection.
    _refused(address.replace("tls://", "tcp://"))
    # Everything from another CA: the client refuses the scheduler's certificate.
    stranger = Security(
        tls_ca_file=stranger_ca,
        tls_client_cert=stranger_cert,
        tls_client_key=stranger_key,
        require_encryption=True,
    )
    _refused(address, match="certificate", security=stranger)
    # The scheduler and every worker (each node serves the others' gets) hang up on a
    # client that trusts the cluster's CA but shows no certificate, or one from another
    # CA, and on plain TCP; each answers one with the cluster's certificate.
    refused = [_context(ca), _context(ca, (stranger_cert, stranger_key))]
    for target in [address, *cluster.directory()]:
        started = time.monotonic()
        for context in refused:
            with pytest.raises(OSError):
                _handshake(target, context)
        with pytest.raises(OSError):
            _handshake(target.replace("tls://", "tcp://"), None)
        assert time.monotonic() - started < 3 * REFUSAL_SECONDS + 5
        _handshake(target, _context(ca, (cert, key)))


def test_the_command_takes_tls_from_dask_config(cluster, tls):
    """`eau2 run --scheduler tls://...` connects with the TLS settings of Dask's config (here
    its environment variables), and fails without them."""
    ca, cert, key = tls
    plain = {name: value for name, value in os.environ.items() if not name.startswith("DASK_")}
    configured = plain | {
        "DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION": "True",
        "DASK_DISTRIBUTED__COMM__TLS__CA_FILE": ca,
        "DASK_DISTRIBUTED__COMM__TLS__CLIENT__CERT": cert,
        "DASK_DISTRIBUTED__COMM__TLS__CLIENT__KEY": key,
    }
    command = [sys.executable, "-m", "eau2", "run", "trivial", "--scheduler", cluster.address]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, env=configured)
    assert result.returncode == 0, result.stderr
    assert "sum 499999500000" in result.stdout
    refused = subprocess.run(command, capture_output=True, text=True, timeout=120, env=plain)
    assert refused.returncode != 0 and "sum" not in refused.stdout


def test_a_client_takes_tls_from_dask_config(cluster, tls):
    ca, cert, key = tls
    settings = {
        "distributed.comm.require-encryption": True,
        "distributed.comm.tls.ca-file": ca,
        "distributed.comm.tls.client.cert": cert,
        "distributed.comm.tls.client.key": key,
    }
    with dask.config.set(settings), Client(cluster.address, timeout="30s") as client:
        kv = eau2_dask.connect(client)
        kv.put(Key("tls-configured", 0), b"configured")
        assert kv.get(Key("tls-configured", 0)) == b"configured"
        kv.delete(Key("tls-configured", 0))
