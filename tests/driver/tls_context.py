# The TLS context both test drivers hand the client under test: the same verification on both
# runtimes, each with the CA format its ssl module takes.
#
# MicroPython 1.22+ and CPython 3.9+: only ssl, sys.
import sys

IS_MICROPYTHON = sys.implementation.name == "micropython"


def make_ssl_context(ca, verify):
    # The host passes a DER file to MicroPython (its ssl refuses PEM) and a PEM file to CPython.
    import ssl

    if IS_MICROPYTHON:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if verify:
            ctx.verify_mode = ssl.CERT_REQUIRED
            with open(ca, "rb") as f:
                ctx.load_verify_locations(cadata=f.read())
        else:
            ctx.verify_mode = ssl.CERT_NONE
        return ctx
    ctx = ssl.create_default_context(cafile=ca)
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def legacy_ssl_params(ca, verify):
    # umqtt.simple's ssl=True form: keywords for MicroPython's ssl.wrap_socket (the CA as DER bytes
    # there; CPython's stand-in takes the PEM text its ssl module reads).
    import ssl

    if not verify:
        return {}
    with open(ca, "rb" if IS_MICROPYTHON else "r") as f:
        return {"cert_reqs": ssl.CERT_REQUIRED, "cadata": f.read()}
