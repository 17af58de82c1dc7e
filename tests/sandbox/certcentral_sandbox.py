#!/usr/bin/python3
"""CertCentral Services API v2 (EU instance) sandbox for pkio-agent tests.

A strict emulator of the PKIoverheid person-certificate order flow: order, order info, list,
download, cancel, revoke, request approval, per-key rate limits, plus a /__sandbox/ control API
for fault injection. Python standard library only; all crypto via the `openssl` command line.
See README.md in this directory for the interface.
"""
import argparse
import base64
import bisect
import collections
import datetime
import hashlib
import http.server
import io
import json
import os
import re
import secrets
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
import zipfile

API = "/services/v2"
DEFAULT_KEY = "sandbox-0123456789abcdef"
BEHAVIORS = ("issue", "reject", "never", "needs_approval")
AE = ("authentication", "encryption")
NR = ("nonrepudiation",)
# The PKIo person family (certcentral-api.md section 4). prov = allowed provisioning value,
# title = professional_title required (else not accepted), org = organization object required.
PRODUCTS = {
    "pkio_organisation_person_prof": dict(
        name="PKIo Authentication or Encryption - Professional", prov="token", profiles=AE,
        title=True, org=False),
    "pkio_organisation_person": dict(
        name="PKIo Authentication or Encryption - Organisation Person", prov="token",
        profiles=AE, title=False, org=True),
    "pkio_private_person_prof": dict(
        name="PKIo Authentication or Encryption - Private Professional", prov="token",
        profiles=AE, title=True, org=False),
    "pkio_burger": dict(
        name="PKIo Authentication or Encryption - Citizen", prov="token", profiles=AE,
        title=False, org=False),
    "pkio_qualified_burger": dict(
        name="PKIo Citizen - Signing", prov="qscd", profiles=NR, title=False, org=False),
    "pkio_qualified_organisation_person_prof": dict(
        name="PKIo Professional - Signing", prov="qscd", profiles=NR, title=True, org=False),
}
CANCELABLE = ("pending", "waiting_pickup", "needs_approval")
REVOCATION_REASONS = ("unspecified", "key_compromise", "affiliation_changed", "superseded",
                      "cessation_of_operation")
FORMATS = {  # format_type -> (content type, builder key)
    "pem_all": "application/x-pem-file", "pem_noroot": "application/x-pem-file",
    "pem_nointermediate": "application/x-pem-file", "p7b": "application/x-pkcs7-certificates",
    "cer": "application/x-pkcs7-certificates", "default": "application/zip",
    "default_pem": "application/zip", "default_cer": "application/zip", "apache": "application/zip",
}
FAULT_RE = re.compile(r"^(429|drop|lost|garbage|truncated|html|wrong_type|"
                      r"retry_after:\d+|status:[2-5]\d\d|(slow|late):\d+(\.\d+)?)$")
# How certificate.csr is shown in order info (README "Order info: certificate.csr").
CSR_PRESENTATIONS = ("as_sent", "rewrapped", "one_line", "bare", "absent", "undecodable")
CSR_UNDECODABLE = "(CSR not available)"
NAME_PRESENTATIONS = ("as_sent", "upper")
INDIVIDUAL_FIELDS = ("id", "first_name", "last_name", "email", "telephone", "country", "state",
                     "city", "zip", "professional_title")
AUTO_INDIVIDUAL_ID = 500001  # ids the sandbox assigns to individuals ordered with full details
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
LIMIT_MSG = "Service unavailable, please limit request volume"

OPENSSL_CNF = """\
[req]
distinguished_name = dn
[dn]
[tls_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[tls_server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[root]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[inter]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[leaf_authentication]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth,emailProtection
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[leaf_encryption_rsa]
basicConstraints = critical,CA:FALSE
keyUsage = critical,keyEncipherment,dataEncipherment
extendedKeyUsage = emailProtection
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[leaf_encryption_ec]
basicConstraints = critical,CA:FALSE
keyUsage = critical,keyAgreement
extendedKeyUsage = emailProtection
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[leaf_nonrepudiation]
basicConstraints = critical,CA:FALSE
keyUsage = critical,nonRepudiation
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
"""


# ----------------------------------------------------------------------------------- helpers
def utcnow():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def iso(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%S+00:00")


def write_atomic(path, data, mode=0o644):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def err_body(code, message):
    return {"errors": [{"code": code, "message": message}]}


def pem_blocks(text, label):
    return re.findall(r"-----BEGIN %s-----\r?\n.*?-----END %s-----" % (label, label), text, re.S)


def pem_der(block):
    return base64.b64decode("".join(block.strip().splitlines()[1:-1]))


def csr_der_b64(pem):
    """Base64 (one string) of the DER of the first CSR block in a PEM text, or None."""
    blocks = pem_blocks(pem, "(?:NEW )?CERTIFICATE REQUEST") if isinstance(pem, str) else []
    return base64.b64encode(pem_der(blocks[0])).decode() if blocks else None


def present_csr(mode, as_sent, b64):
    """certificate.csr as order info shows it; (False, None) = leave the key out."""
    if mode == "absent":
        return False, None
    if mode == "undecodable":
        return True, CSR_UNDECODABLE
    if mode == "as_sent" or not b64:
        return True, as_sent
    if mode == "bare":
        return True, b64
    if mode == "one_line":
        return True, "-----BEGIN CERTIFICATE REQUEST-----%s-----END CERTIFICATE REQUEST-----" % b64
    lines = [b64[i:i + 76] for i in range(0, len(b64), 76)]  # rewrapped
    return True, "\r\n".join(["-----BEGIN NEW CERTIFICATE REQUEST-----", *lines,
                               "-----END NEW CERTIFICATE REQUEST-----", ""])


def person_key(d):
    """Identity of an individual: first_name, last_name, email; case-insensitive, whitespace
    collapsed."""
    return tuple(" ".join(str(d.get(k) or "").split()).casefold()
                 for k in ("first_name", "last_name", "email"))


def person_cn(ind):
    if ind.get("first_name") and ind.get("last_name"):
        return "%s %s" % (ind["first_name"].strip(), ind["last_name"].strip())
    return "Sandbox Individual %d" % ind["id"]


def mask_key(key):
    return (key[:4] + "\u2026") if key else None


CARD_KEYS = ("number", "cvv", "expiration_month", "expiration_year", "cardholder_name")


def mask_body(raw):
    """Body for requests.log: parsed JSON with card data masked, or masked raw text."""
    if not raw:
        return None
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        text = raw.decode("utf-8", "replace")[:4000]
        text = re.sub(r"\d[\d \-]{10,}\d", "***", text)
        return re.sub(r'("(?:%s)"\s*:\s*)("[^"]*"|[^,}\s]+)' % "|".join(CARD_KEYS), r'\1"***"', text)
    if isinstance(obj, dict) and isinstance(obj.get("credit_card"), dict):
        obj["credit_card"] = {k: ("***" if k in CARD_KEYS else v)
                              for k, v in obj["credit_card"].items()}
    return obj


def wrong_types(v):
    """Same shape, wrong JSON types: numbers become strings, strings become arrays."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return [v]
    if isinstance(v, list):
        return [wrong_types(x) for x in v]
    if isinstance(v, dict):
        return {k: wrong_types(x) for k, x in v.items()}
    return v


# ------------------------------------------------------------------------------------ openssl
class OpenSSL:
    def __init__(self, pki_dir):
        self.dir = pki_dir
        self.cnf = os.path.join(pki_dir, "openssl.cnf")
        self.env = dict(os.environ, OPENSSL_CONF=self.cnf)

    def run(self, *args, data=None, check=True):
        p = subprocess.run(["openssl", *args], input=data, capture_output=True, env=self.env,
                           cwd=self.dir)
        if check and p.returncode != 0:
            raise RuntimeError("openssl %s failed: %s" % (args[0], p.stderr.decode(errors="replace")))
        return p

    def path(self, name):
        return os.path.join(self.dir, name)

    def ensure_pki(self):
        """Create (or reuse) the TLS CA + server cert and the issuing root + intermediate."""
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        write_atomic(self.cnf, OPENSSL_CNF)
        names = ["tls-ca.key", "tls-ca.pem", "server.key", "server.pem", "root.key", "root.pem",
                 "intermediate.key", "intermediate.pem"]
        if all(os.path.exists(self.path(n)) for n in names) and all(
                self.run("x509", "-noout", "-checkend", "86400", "-in", self.path(n),
                         check=False).returncode == 0 for n in ("server.pem", "intermediate.pem")):
            return False
        old = os.umask(0o077)
        try:
            for key, alg in (("tls-ca.key", "EC"), ("server.key", "EC"), ("root.key", "RSA"),
                             ("intermediate.key", "RSA")):
                opt = "ec_paramgen_curve:P-256" if alg == "EC" else "rsa_keygen_bits:2048"
                self.run("genpkey", "-algorithm", alg, "-pkeyopt", opt, "-out", key)
        finally:
            os.umask(old)
        serial = lambda: "0x" + secrets.token_hex(12)  # noqa: E731
        self.run("req", "-x509", "-new", "-key", "tls-ca.key", "-subj",
                 "/O=pkio-agent sandbox/CN=pkio-agent sandbox TLS CA", "-days", "3650",
                 "-extensions", "tls_ca", "-sha256", "-set_serial", serial(), "-out", "tls-ca.pem")
        self.run("req", "-x509", "-new", "-key", "server.key", "-CA", "tls-ca.pem", "-CAkey",
                 "tls-ca.key", "-subj", "/O=pkio-agent sandbox/CN=localhost", "-days", "825",
                 "-extensions", "tls_server", "-sha256", "-set_serial", serial(), "-out", "server.pem")
        self.run("req", "-x509", "-new", "-key", "root.key", "-subj",
                 "/C=NL/O=pkio-agent sandbox/CN=Sandbox PKIo Test Root CA - G1", "-days", "3650",
                 "-extensions", "root", "-sha256", "-set_serial", serial(), "-out", "root.pem")
        self.run("req", "-x509", "-new", "-key", "intermediate.key", "-CA", "root.pem", "-CAkey",
                 "root.key", "-subj",
                 "/C=NL/O=pkio-agent sandbox/CN=Sandbox PKIo Test Person CA - G1", "-days", "3000",
                 "-extensions", "inter", "-sha256", "-set_serial", serial(),
                 "-out", "intermediate.pem")
        return True

    def inspect_csr(self, pem):
        """Returns (info, errors). info: key_type, bits, spki_sha256."""
        errors = []
        if not isinstance(pem, str) or not pem_blocks(pem, "(?:NEW )?CERTIFICATE REQUEST"):
            return None, [("csr_invalid_cannot_parse", "The CSR is not a PEM PKCS#10 request.")]
        p = self.run("req", "-in", "/dev/stdin", "-noout", "-text", "-pubkey", "-verify",
                     "-nameopt", "utf8", data=pem.encode(), check=False)
        out, log = p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")
        if "Certificate Request:" not in out:
            return None, [("csr_invalid_cannot_parse", "The CSR could not be parsed.")]
        if "verify OK" not in out + log:
            errors.append(("invalid_csr|signature", "The CSR's self-signature does not verify."))
        info = {}
        alg = re.search(r"Public Key Algorithm: (\S+)", out)
        alg = alg.group(1) if alg else "?"
        bits = re.search(r"Public-Key: \((\d+) bit\)", out)
        bits = int(bits.group(1)) if bits else 0
        if alg in ("rsaEncryption", "rsassaPss"):
            info["key_type"] = "rsa"
            if not 2048 <= bits <= 8192:
                errors.append(("invalid_csr|key_size", "RSA keys must be 2048 to 8192 bits, got %d." % bits))
        elif alg == "id-ecPublicKey":
            info["key_type"] = "ec"
            curve = re.search(r"ASN1 OID: (\S+)", out)
            if not curve or curve.group(1) not in ("prime256v1", "secp384r1"):
                errors.append(("invalid_csr|key_type", "EC keys must use P-256 or P-384."))
        else:
            errors.append(("invalid_csr|key_type", "Unsupported key algorithm %s." % alg))
        info["bits"] = bits
        sig = out[out.rfind("Signature Algorithm:"):]
        sigalg = re.search(r"Signature Algorithm: (\S+)", sig)
        sigalg = sigalg.group(1) if sigalg else "?"
        if sigalg == "rsassaPss":
            h = re.search(r"Hash Algorithm: (\S+)", sig)
            ok = h and h.group(1) == "sha256"
        else:
            ok = sigalg in ("sha256WithRSAEncryption", "ecdsa-with-SHA256")
        if not ok:
            errors.append(("invalid_csr|signature_hash", "The CSR must be signed with SHA-256 "
                           "(RSA PKCS#1 v1.5, RSASSA-PSS or ECDSA), got %s." % sigalg))
        pub = pem_blocks(out, "PUBLIC KEY")
        if not pub:
            return None, [("csr_invalid_cannot_parse", "The CSR has no readable public key.")]
        info["spki_sha256"] = hashlib.sha256(pem_der(pub[0])).hexdigest()
        return info, errors

    def issue(self, csr, subject, profile, key_type, days, pss):
        section = "leaf_" + profile
        if profile == "encryption":
            section += "_" + key_type
        serial = bytearray(secrets.token_bytes(16))
        serial[0] = (serial[0] & 0x7F) | 0x40
        args = ["req", "-in", "/dev/stdin", "-x509", "-CA", "intermediate.pem", "-CAkey",
                "intermediate.key", "-copy_extensions", "none", "-extensions", section, "-utf8",
                "-subj", subject, "-set_serial", "0x" + serial.hex(), "-days", str(days),
                "-sha256"]
        if pss:
            args += ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:digest"]
        leaf = self.run(*args, data=csr.encode()).stdout.decode()
        leaf = pem_blocks(leaf, "CERTIFICATE")[0] + "\n"
        bundle = self.root_inter("root") + self.root_inter("intermediate") + leaf
        p7b = self.run("crl2pkcs7", "-nocrl", "-certfile", "/dev/stdin",
                       data=bundle.encode()).stdout.decode()
        return leaf, serial.hex().upper(), hashlib.sha1(pem_der(leaf)).hexdigest().upper(), p7b

    def root_inter(self, which):
        with open(self.path(which + ".pem")) as f:
            return pem_blocks(f.read(), "CERTIFICATE")[0] + "\n"


def subj_escape(s):
    return re.sub(r"([\\/+=])", r"\\\1", s)


# --------------------------------------------------------------------------------- validation
EMAIL_RE = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                      r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$")
PHONE_RE = re.compile(r"^\+[1-9][0-9 ().\-]*$")
COUNTRY_RE = re.compile(r"^[A-Za-z]{2}$")
NAME_TITLES = ("dr.", "prof.", "mr.", "mrs.", "ms.", "drs.", "ir.", "ing.", "dhr.", "mevr.")


class Checker:
    """Collects one error entry per problem: code 'kind|field.path'."""

    def __init__(self):
        self.errors = []

    def add(self, kind, path, message):
        self.errors.append({"code": "%s|%s" % (kind, path) if path else kind, "message": message})

    def known(self, d, allowed, prefix):
        for k in d:
            if k not in allowed:
                self.add("unknown_field", prefix + k, "Unknown field %s%s." % (prefix, k))

    def obj(self, d, key, path, required=True):
        v = d.get(key)
        if v is None:
            if required:
                self.add("missing_field", path, "%s is required." % path)
            return None
        if not isinstance(v, dict):
            self.add("invalid_value", path, "%s must be an object." % path)
            return None
        return v

    def text(self, d, key, path, required=True, regex=None, choices=None, fold=False,
             empty_ok=False, hint=""):
        v = d.get(key)
        if v is None:
            if required:
                self.add("missing_field", path, "%s is required." % path)
            return None
        if not isinstance(v, str):
            self.add("invalid_value", path, "%s must be a string." % path)
            return None
        if (not v.strip() and not empty_ok) or re.search(r"[\x00-\x1f\x7f]", v) or len(v) > 255:
            self.add("invalid_value", path, "%s must be a non-empty single-line string." % path)
            return None
        cmp = v.lower() if fold else v
        if (regex and not regex.match(v)) or (choices and cmp not in choices):
            self.add("invalid_value", path, "%s has an invalid value%s." % (path, hint))
            return None
        return v

    def integer(self, d, key, path, lo, hi, required=False):
        v = d.get(key)
        if v is None:
            if required:
                self.add("missing_field", path, "%s is required." % path)
            return None
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            self.add("invalid_value", path, "%s must be an integer %d..%d." % (path, lo, hi))
            return None
        return v


def validate_order(product_id, body, today):
    """Validates an order body against the product's rules. Returns (errors, facts)."""
    p = PRODUCTS[product_id]
    c = Checker()
    facts = {}
    top = {"certificate", "csa_agreed_to", "cs_provisioning_method", "provisioning_method",
           "ship_info", "order_validity", "payment_method", "credit_card", "billing_address"}
    if p["org"]:
        top.add("organization")
    c.known(body, top, "")
    cert = c.obj(body, "certificate", "certificate")
    if cert is not None:
        c.known(cert, {"signature_hash", "profile_option", "is_rsassa_pss", "individual", "csr"},
                "certificate.")
        c.text(cert, "signature_hash", "certificate.signature_hash", choices=("sha256",),
               hint=" (only sha256 is supported)")
        facts["profile"] = c.text(cert, "profile_option", "certificate.profile_option",
                                  choices=p["profiles"], hint=" (allowed: %s)" % ", ".join(p["profiles"]))
        pss = cert.get("is_rsassa_pss")
        if pss is not None and not isinstance(pss, bool):
            c.add("invalid_value", "certificate.is_rsassa_pss", "is_rsassa_pss must be a boolean.")
        facts["pss"] = pss is True
        if "csr" not in cert or cert["csr"] is None:
            c.add("missing_field", "certificate.csr",
                  "certificate.csr is required by this sandbox (project extension).")
        elif not isinstance(cert["csr"], str):
            c.add("invalid_value", "certificate.csr", "certificate.csr must be a PEM string.")
        ind = c.obj(cert, "individual", "certificate.individual")
        if ind is not None:
            pre = "certificate.individual."
            fields = {"id", "first_name", "last_name", "email", "telephone", "country", "state",
                      "city", "zip"} | ({"professional_title"} if p["title"] else set())
            c.known(ind, fields, pre)
            if ind.get("id") is not None:
                c.integer(ind, "id", pre + "id", 1, 2**31 - 1)
                for k in ind:
                    if k != "id" and k in fields:
                        c.add("invalid_value", pre + k,
                              "Omit %s%s when individual.id is given." % (pre, k))
                facts["individual"] = {"id": ind["id"]}
            else:
                first = c.text(ind, "first_name", pre + "first_name")
                if first and first.split()[0].lower() in NAME_TITLES:
                    c.add("invalid_value", pre + "first_name", "Do not include titles such as Dr.")
                c.text(ind, "last_name", pre + "last_name")
                email = c.text(ind, "email", pre + "email", regex=EMAIL_RE)
                if email and len(email) > 254:
                    c.add("invalid_value", pre + "email", "email is too long.")
                tel = c.text(ind, "telephone", pre + "telephone", regex=PHONE_RE,
                             hint=" (use +<country code> ...)")
                if tel and not 7 <= sum(ch.isdigit() for ch in tel) <= 17:
                    c.add("invalid_value", pre + "telephone", "telephone has an invalid length.")
                c.text(ind, "country", pre + "country", regex=COUNTRY_RE, hint=" (2-letter code)")
                c.text(ind, "state", pre + "state")
                c.text(ind, "city", pre + "city", required=False)
                c.text(ind, "zip", pre + "zip", required=False)
                if p["title"]:
                    c.text(ind, "professional_title", pre + "professional_title")
                facts["individual"] = ind
    if p["org"]:
        org = c.obj(body, "organization", "organization")
        if org is not None:
            c.known(org, {"id", "contacts"}, "organization.")
            c.integer(org, "id", "organization.id", 1, 2**31 - 1, required=True)
            if org.get("contacts") is not None and not (
                    isinstance(org["contacts"], list) and all(isinstance(x, dict) for x in org["contacts"])):
                c.add("invalid_value", "organization.contacts", "contacts must be an array of objects.")
            facts["organization"] = org
    if body.get("csa_agreed_to") is None:
        c.add("missing_field", "csa_agreed_to", "csa_agreed_to is required.")
    elif body["csa_agreed_to"] is not True:
        c.add("invalid_value", "csa_agreed_to", "The Certificate Subscriber Agreement must be agreed to (true).")
    names = [n for n in ("cs_provisioning_method", "provisioning_method") if body.get(n) is not None]
    if not names:
        c.add("missing_field", "cs_provisioning_method", "cs_provisioning_method is required.")
    for n in names:
        if body[n] != p["prov"]:
            c.add("invalid_value", n, "%s must be '%s' for this product." % (n, p["prov"]))
    ship = c.obj(body, "ship_info", "ship_info", required=False)
    if ship is not None:
        keys = ("name", "addr1", "addr2", "city", "state", "zip", "country", "method")
        c.known(ship, set(keys), "ship_info.")
        for k in keys[:-2]:
            c.text(ship, k, "ship_info." + k, empty_ok=(k == "addr2"))
        c.text(ship, "country", "ship_info.country", regex=COUNTRY_RE, hint=" (2-letter code)")
        c.text(ship, "method", "ship_info.method", choices=("standard", "expedited"), fold=True,
               hint=" (STANDARD or EXPEDITED)")
    facts["days"] = 365
    val = c.obj(body, "order_validity", "order_validity", required=False)
    if val is not None:
        c.known(val, {"years", "days", "custom_expiration_date"}, "order_validity.")
        if not any(val.get(k) is not None for k in ("years", "days", "custom_expiration_date")):
            c.add("missing_field", "order_validity.years",
                  "order_validity needs years, days or custom_expiration_date.")
        years = c.integer(val, "years", "order_validity.years", 1, 3)
        days = c.integer(val, "days", "order_validity.days", 1, 1095)
        ced = c.text(val, "custom_expiration_date", "order_validity.custom_expiration_date",
                     required=False, regex=re.compile(r"^\d{4}-\d{2}-\d{2}$"), hint=" (yyyy-MM-dd)")
        if ced:
            try:
                delta = (datetime.date.fromisoformat(ced) - today).days
            except ValueError:
                delta = -1
            if not 1 <= delta <= 397:
                c.add("invalid_value", "order_validity.custom_expiration_date",
                      "custom_expiration_date must be a date within 397 days from today.")
            else:
                facts["days"] = delta
        elif days:
            facts["days"] = days
        elif years:
            facts["days"] = 365 * years
    pay = c.text(body, "payment_method", "payment_method", choices=("balance", "card", "profile"),
                 hint=" (balance, card or profile)")
    cc = c.obj(body, "credit_card", "credit_card", required=(pay == "card"))
    if cc is not None and pay != "card":
        c.add("invalid_value", "credit_card", "credit_card is only allowed with payment_method card.")
    elif cc is not None:
        pre = "credit_card."
        c.known(cc, {"number", "expiration_month", "expiration_year", "cvv", "cardholder_name",
                     "save_credit_card", "set_as_default"}, pre)
        c.text(cc, "number", pre + "number", regex=re.compile(r"^\d{12,19}$"), hint=" (12-19 digits)")
        month = c.text(cc, "expiration_month", pre + "expiration_month",
                       regex=re.compile(r"^(0[1-9]|1[0-2])$"), hint=" (01-12)")
        year = c.text(cc, "expiration_year", pre + "expiration_year", regex=re.compile(r"^\d{4}$"),
                      hint=" (4 digits)")
        if year and int(year) < today.year:
            c.add("invalid_value", pre + "expiration_year", "The card has expired.")
        elif year and month and (int(year), int(month)) < (today.year, today.month):
            c.add("invalid_value", pre + "expiration_month", "The card has expired.")
        c.text(cc, "cvv", pre + "cvv", regex=re.compile(r"^\d{3,4}$"), hint=" (3-4 digits)")
        c.text(cc, "cardholder_name", pre + "cardholder_name")
        for k, req in (("save_credit_card", False), ("set_as_default", True)):
            v = cc.get(k)
            if v is None:
                if req:
                    c.add("missing_field", pre + k, "%s%s is required." % (pre, k))
            elif not (isinstance(v, bool) or v in ("true", "false")):
                c.add("invalid_value", pre + k, "%s%s must be true or false." % (pre, k))
    bill = c.obj(body, "billing_address", "billing_address", required=(pay == "card"))
    if bill is not None:
        c.known(bill, {"address", "address2", "city", "state", "country", "zip"}, "billing_address.")
        for k in ("address", "address2", "city", "state", "country", "zip"):
            c.text(bill, k, "billing_address." + k, required=k in ("address", "city", "country"),
                   regex=COUNTRY_RE if k == "country" else None)
    facts["payment_method"] = pay
    facts["provisioning"] = (names[0] if names else "cs_provisioning_method", p["prov"])
    return c.errors, facts


# -------------------------------------------------------------------------------- rate limits
class Limiter:
    """Rolling windows per API key. Only accepted requests count towards the windows."""

    def __init__(self, windows):
        self.windows = windows  # {"burst": [limit, seconds], "sustained": [limit, seconds]}
        self.hits = collections.defaultdict(list)

    def check(self, key, now):
        hits = self.hits[key]
        horizon = now - max(s for _, s in self.windows.values())
        del hits[:bisect.bisect_right(hits, horizon)]
        for name, (limit, secs) in self.windows.items():
            if len(hits) - bisect.bisect_right(hits, now - secs) >= limit:
                return name
        hits.append(now)
        return None


# ------------------------------------------------------------------------------------ sandbox
class Sandbox:
    def __init__(self, args):
        self.dir = args.dir
        self.keys = args.api_key or [DEFAULT_KEY]
        self.behavior = args.behavior
        self.after = args.issue_after_polls
        self.csr_presentation = args.csr_presentation
        self.list_lag = args.list_lag
        self.name_presentation = args.name_presentation
        self.ossl = OpenSSL(os.path.join(self.dir, "pki"))
        self.lock = threading.RLock()
        self.log_lock = threading.Lock()
        self.limiter = Limiter({"burst": [args.burst_limit, args.burst_window],
                                "sustained": [args.sustained_limit, args.sustained_window]})
        self.faults = []
        self.state_file = os.path.join(self.dir, "state.json")
        self.fresh()
        if os.path.exists(self.state_file):
            with open(self.state_file) as f:
                self.st.update(json.load(f))
            self.st["orders"] = {int(k): v for k, v in self.st["orders"].items()}
            self.st["individuals"] = {int(k): v for k, v in self.st["individuals"].items()}
            self.st["next"].setdefault("individual", AUTO_INDIVIDUAL_ID)

    def fresh(self):
        """Forget the account's history; individuals registered by --individuals or
        POST /__sandbox/individuals stay (those assigned to ordered individuals go)."""
        kept = {i: d for i, d in getattr(self, "st", {}).get("individuals", {}).items()
                if d.get("source") == "registered"}
        self.st = {"orders": {}, "next": {"order": 100001, "request": 200001, "certificate": 300001,
                                          "individual": AUTO_INDIVIDUAL_ID},
                   "counts": {}, "total": 0, "violations": [], "revocations": [],
                   "cancellations": [], "faults_fired": [], "warnings": [], "individuals": kept,
                   "connections": {"total": 0, "resumed": 0, "by_key": {}}}
        self.limiter.hits.clear()

    def save(self):
        write_atomic(self.state_file, json.dumps(self.st))

    def new_id(self, kind):
        n = self.st["next"][kind]
        self.st["next"][kind] = n + 1
        return n

    def log(self, entry):
        with self.log_lock, open(os.path.join(self.dir, "requests.log"), "a") as f:
            f.write(json.dumps(entry, ensure_ascii=False) + "\n")

    # -- faults
    def add_faults(self, spec):
        if not isinstance(spec, dict) or not isinstance(spec.get("faults"), list):
            raise ValueError('expected {"faults": [...]}')
        new = []
        for f in spec["faults"]:
            if not isinstance(f, dict) or not FAULT_RE.match(str(f.get("kind", ""))):
                raise ValueError("bad fault %r" % (f,))
            count = f.get("count", 1)
            if isinstance(count, bool) or not isinstance(count, int) or count < 1:
                raise ValueError("bad count in %r" % (f,))
            new.append({"method": (f.get("method") or "").upper() or None,
                        "path_prefix": f.get("path_prefix") or "/", "kind": f["kind"],
                        "count": count})
        with self.lock:
            self.faults.extend(new)

    # -- known individuals
    def add_individuals(self, spec):
        """{"individuals": [{"id", "first_name", "last_name", "email", ...}]}: add or replace by id."""
        if not isinstance(spec, dict) or not isinstance(spec.get("individuals"), list):
            raise ValueError('expected {"individuals": [...]}')
        new = []
        for d in spec["individuals"]:
            if not isinstance(d, dict):
                raise ValueError("bad individual %r" % (d,))
            unknown = sorted(k for k in d if k not in INDIVIDUAL_FIELDS)
            if unknown:
                raise ValueError("unknown field(s) %s in %r (allowed: %s)"
                                 % (", ".join(unknown), d, ", ".join(INDIVIDUAL_FIELDS)))
            i = d.get("id")
            if isinstance(i, bool) or not isinstance(i, int) or not 1 <= i <= 2**31 - 1:
                raise ValueError("id must be a positive integer in %r" % (d,))
            for k in ("first_name", "last_name", "email"):
                if k not in d:
                    raise ValueError("%s missing in %r" % (k, d))
            for k, v in d.items():
                if k != "id" and (not isinstance(v, str) or not v.strip()):
                    raise ValueError("%s must be a non-empty string in %r" % (k, d))
            new.append(dict(d, source="registered"))
        with self.lock:
            for d in new:
                self.st["individuals"][d["id"]] = d

    def assign_individual(self, ind):
        """Full details -> the same details plus an id: that of a known individual with the same
        first_name + last_name + email (person_key), else a new one from AUTO_INDIVIDUAL_ID on."""
        key = person_key(ind)
        for d in self.st["individuals"].values():
            if person_key(d) == key:
                return dict(ind, id=d["id"])
        n = self.st["next"]["individual"]
        while n in self.st["individuals"]:
            n += 1
        self.st["next"]["individual"] = n + 1
        self.st["individuals"][n] = dict(ind, id=n, source="order")
        return dict(ind, id=n)

    def individual_view(self, ind):
        v = {"id": ind.get("id")} if "id" in ind else {}
        v.update((k, x) for k, x in ind.items() if k != "source")
        if self.name_presentation == "upper":
            for k in ("first_name", "last_name"):
                if isinstance(v.get(k), str):
                    v[k] = v[k].strip().upper()
            if isinstance(v.get("email"), str):
                v["email"] = v["email"].strip().lower()
        return v

    def take_fault(self, method, raw_path):
        with self.lock:
            for f in self.faults:
                if f["count"] > 0 and f["method"] in (None, method) and raw_path.startswith(f["path_prefix"]):
                    f["count"] -= 1
                    self.st["faults_fired"].append({"kind": f["kind"], "method": method,
                                                    "path": raw_path, "time": iso(utcnow())})
                    return f["kind"]
        return None

    # -- order model
    def find_order(self, ref):
        """Order by id, or by its certificate's serial number or thumbprint (order info rule)."""
        if ref.isdigit() and int(ref) in self.st["orders"]:
            return self.st["orders"][int(ref)]
        for o in self.st["orders"].values():
            if o["cert"] and ref.upper() in (o["cert"]["serial_number"], o["cert"]["thumbprint"]):
                return o
        return None

    def find_cert(self, ref):
        for o in self.st["orders"].values():
            if str(o["certificate_id"]) == ref or (o["cert"] and ref.upper() == o["cert"]["serial_number"]):
                return o
        return None

    def find_request(self, rid):
        for o in self.st["orders"].values():
            for r in o["requests"]:
                if r["id"] == rid:
                    return o, r
        return None, None

    def advance(self, o):
        """Applies the current behaviour after a poll (polls already counted)."""
        if o["status"] not in ("pending", "needs_approval") or self.behavior == "never":
            return
        if self.after == 0 or o["polls"] > self.after:  # 0: final state at once
            self.finish(o, "rejected" if self.behavior == "reject" else "issued")

    def finish(self, o, status):
        req = o["requests"][0]
        req["date_processed"] = iso(utcnow())
        if status == "rejected":
            o["status"], req["status"] = "rejected", "rejected"
            return
        ind = o["individual"]
        cn, subject = person_cn(ind), "/C=" + (ind.get("country") or "NL").upper()
        if o.get("organization"):
            subject += "/O=" + subj_escape("Sandbox Organisation %d" % o["organization"]["id"])
        if ind.get("professional_title"):
            subject += "/title=" + subj_escape(ind["professional_title"])
        subject += "/CN=" + subj_escape(cn)
        leaf, serial, thumb, p7b = self.ossl.issue(o["csr"], subject, o["profile_option"],
                                                   o["key_type"], o["validity_days"], o["is_rsassa_pss"])
        now = utcnow()
        o["cert"] = {"pem": leaf, "p7b": p7b, "serial_number": serial, "thumbprint": thumb,
                     "date_issued": iso(now), "valid_from": now.date().isoformat(),
                     "valid_till": (now + datetime.timedelta(days=o["validity_days"])).date().isoformat()}
        o["status"], req["status"] = "issued", "approved"
        os.makedirs(os.path.join(self.dir, "issued"), exist_ok=True)
        write_atomic(os.path.join(self.dir, "issued", "%d.pem" % o["certificate_id"]), leaf)

    def order_view(self, o, full=True):
        cert = {"id": o["certificate_id"], "common_name": o["common_name"],
                "date_created": o["created"], "signature_hash": "sha256"}
        if o["cert"]:
            for k in ("serial_number", "thumbprint", "date_issued", "valid_from", "valid_till"):
                cert[k] = o["cert"][k]
        if o.get("forced_valid_till"):
            cert["valid_till"] = o["forced_valid_till"]
        if full and "valid_till" in cert:
            till = datetime.date.fromisoformat(cert["valid_till"])
            cert["days_remaining"] = max(0, (till - utcnow().date()).days)
        v = {"id": o["id"], "certificate": cert, "status": o["status"], "is_renewed": False,
             "date_created": o["created"], "product": self.product_view(o["product"])}
        if o.get("organization"):
            v["organization"] = {"id": o["organization"]["id"]}
        if not full:
            return v
        cert.update({"profile_option": o["profile_option"], "is_rsassa_pss": o["is_rsassa_pss"],
                     "cert_validity": {"days": o["validity_days"]}})
        shown, csr = present_csr(self.csr_presentation, o["csr"],
                                 o.get("csr_der_b64") or csr_der_b64(o["csr"]))
        if shown:
            cert["csr"] = csr
        v.update({"requests": [dict(r) for r in o["requests"]], o["provisioning"][0]: o["provisioning"][1],
                  "payment_method": o["payment_method"], "currency": "EUR",
                  "individual": self.individual_view(o["individual"])})
        if o.get("ship_info"):
            v["ship_info"] = o["ship_info"]
        return v

    @staticmethod
    def product_view(pid):
        return {"name_id": pid, "name": PRODUCTS[pid]["name"], "type": "client_certificate"}

    # -- API handlers: each returns (status, body) with body a dict/list (JSON), None or
    #    (content_type, bytes)
    def create_order(self, product_id, headers, raw):
        if product_id not in PRODUCTS:
            return 404, err_body("not_found|product", "The specified product was not found.")
        body, bad = self.parse_json_object(headers, raw)
        if bad:
            return bad
        errors, facts = validate_order(product_id, body, utcnow().date())
        csr = body["certificate"].get("csr") if isinstance(body.get("certificate"), dict) else None
        info = None
        if isinstance(csr, str):
            info, csr_errors = self.ossl.inspect_csr(csr)
            errors += [{"code": c, "message": m} for c, m in csr_errors]
        with self.lock:
            ind = facts.get("individual")
            if not errors and set(ind) == {"id"}:
                known = self.st["individuals"].get(ind["id"])
                if known is None:
                    errors.append({"code": "invalid_value|certificate.individual.id",
                                   "message": "No individual with id %d in this account." % ind["id"]})
                else:
                    ind = {k: v for k, v in known.items() if k != "source"}
            if errors:
                return 400, {"errors": errors}
            if "id" not in ind:  # full details: the sandbox assigns (or reuses) an id
                ind = self.assign_individual(ind)
            now = iso(utcnow())
            o = {"id": self.new_id("order"), "certificate_id": self.new_id("certificate"),
                 "product": product_id, "created": now, "created_ts": time.time(),
                 "common_name": person_cn(ind), "polls": 0,
                 "status": "needs_approval" if self.behavior == "needs_approval" else "pending",
                 "requests": [{"id": self.new_id("request"), "date": now, "type": "new_request",
                               "status": "pending"}],
                 "csr": csr, "csr_der_b64": csr_der_b64(csr),
                 "spki_sha256": info["spki_sha256"], "key_type": info["key_type"],
                 "profile_option": facts["profile"], "is_rsassa_pss": facts["pss"],
                 "individual": ind, "organization": facts.get("organization"),
                 "validity_days": facts["days"], "payment_method": facts["payment_method"],
                 "provisioning": facts["provisioning"], "ship_info": body.get("ship_info"),
                 "cert": None}
            self.st["orders"][o["id"]] = o
            self.advance(o)
            resp = {"id": o["id"], "requests": [{"id": o["requests"][0]["id"],
                                                 "status": o["requests"][0]["status"]}]}
            if o["status"] == "issued":
                resp["certificate_id"] = o["certificate_id"]
            return 201, resp

    def get_order(self, ref):
        with self.lock:
            o = self.find_order(ref)
            if not o:
                return 404, err_body("not_found|order", "The specified order was not found.")
            o["polls"] += 1
            self.advance(o)
            return 200, self.order_view(o)

    def list_orders(self, query):
        q = urllib.parse.parse_qsl(query, keep_blank_values=True)
        filters, limit, offset, sort = {}, 1000, 0, "-date_created"
        for k, v in q:
            m = re.match(r"^filters\[(\w+)\]$", k)
            if m and m.group(1) in ("status", "product_name_id", "date_created", "common_name", "id"):
                filters[m.group(1)] = v
            elif k in ("limit", "offset") and v.isdigit() and (k == "offset" or 1 <= int(v) <= 1000):
                limit, offset = (int(v), offset) if k == "limit" else (limit, int(v))
            elif k == "sort" and v.lstrip("-") in ("id", "date_created", "status"):
                sort = v
            else:
                return 400, err_body("invalid_value|" + k, "Unsupported query parameter %s." % k)
        date_ok = lambda o: True  # noqa: E731
        if "date_created" in filters:
            date_ok = self.date_filter(filters["date_created"])
            if not date_ok:
                return 400, err_body("invalid_value|filters[date_created]",
                                     "Use yyyy-MM-dd with >=, <=, >, < or a start...end range.")
        with self.lock:
            rows = []
            visible_before = time.time() - self.list_lag  # --list-lag: new orders show up late
            for o in self.st["orders"].values():
                if o.get("created_ts", 0) > visible_before:
                    continue
                if "status" in filters and o["status"] not in filters["status"].split(","):
                    continue
                if "product_name_id" in filters and o["product"] not in filters["product_name_id"].split(","):
                    continue
                if "common_name" in filters and filters["common_name"].lower() not in o["common_name"].lower():
                    continue
                if "id" in filters and str(o["id"]) != filters["id"]:
                    continue
                if date_ok(o["created"]):
                    rows.append(o)
            key = sort.lstrip("-")
            rows.sort(key=lambda o: (o["created"] if key == "date_created" else o[key], o["id"]),
                      reverse=sort.startswith("-"))
            page = [self.order_view(o, full=False) for o in rows[offset:offset + limit]]
            return 200, {"orders": page, "page": {"total": len(rows), "limit": limit, "offset": offset}}

    @staticmethod
    def date_filter(expr):
        def parse(s, end=False):
            s = s.strip().replace("T", " ")
            for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d"):
                try:
                    d = datetime.datetime.strptime(s, fmt)
                except ValueError:
                    continue
                if fmt == "%Y-%m-%d" and end:
                    d += datetime.timedelta(days=1, seconds=-1)
                return d
            return None
        val = lambda s: datetime.datetime.strptime(s[:19], "%Y-%m-%dT%H:%M:%S")  # noqa: E731
        if "..." in expr:
            a, b = expr.split("...", 1)
            a, b = parse(a), parse(b, True)
            return (lambda s: a <= val(s) <= b) if a and b else None
        m = re.match(r"^(>=|<=|>|<)?(.*)$", expr)
        op, d = m.group(1), parse(m.group(2), end=m.group(1) in ("<=", ">"))
        if d is None:
            return None
        if not op:
            lo, hi = d, parse(m.group(2), True)
            return lambda s: lo <= val(s) <= hi
        return {">=": lambda s: val(s) >= d, "<=": lambda s: val(s) <= d,
                ">": lambda s: val(s) > d, "<": lambda s: val(s) < d}[op]

    def download(self, o, fmt, missing):
        if fmt not in FORMATS:
            return 400, err_body("invalid_value|format_type", "Unknown format_type %s." % fmt)
        if not o:
            return 404, err_body(missing, "The specified %s was not found." % missing.split("|")[1])
        if not o["cert"]:
            return 400, err_body("cert_unavailable_for_download",
                                 "The certificate is not issued (order status: %s)." % o["status"])
        leaf, inter, root = o["cert"]["pem"], self.ossl.root_inter("intermediate"), self.ossl.root_inter("root")
        if fmt in ("p7b", "cer"):
            return 200, (FORMATS[fmt], o["cert"]["p7b"].encode())
        pem = {"pem_all": leaf + inter + root, "pem_noroot": leaf + inter,
               "pem_nointermediate": leaf + root}.get(fmt)
        if pem:
            return 200, (FORMATS[fmt], pem.encode())
        buf = io.BytesIO()
        ext = ".cer" if fmt == "default_cer" else ".crt"
        files = [("certificate", leaf), ("DigiCertCA", inter)]
        if fmt != "apache":
            files.append(("TrustedRoot", root))
        with zipfile.ZipFile(buf, "w") as z:
            for name, data in files:
                z.writestr(name + ext, data)
        return 200, ("application/zip", buf.getvalue())

    def parse_json_object(self, headers, raw):
        ctype = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/json":
            return None, (400, err_body("bad_request_format", "Content-Type must be application/json."))
        try:
            body = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return None, (400, err_body("bad_request_format", "The request body is not valid JSON."))
        if not isinstance(body, dict):
            return None, (400, err_body("bad_request_format", "The request body must be a JSON object."))
        return body, None

    def cancel(self, ref, headers, raw):
        body, bad = self.parse_json_object(headers, raw)
        if bad:
            return bad
        c = Checker()
        c.known(body, {"status", "note"}, "")
        c.text(body, "status", "status", choices=("canceled",), fold=True, hint=" (only canceled)")
        note = c.text(body, "note", "note")
        if c.errors:
            return 400, {"errors": c.errors}
        with self.lock:
            o = self.find_order(ref)
            if not o:
                return 404, err_body("not_found|order", "The specified order was not found.")
            if o["status"] not in CANCELABLE:
                return 400, err_body("invalid_order_status",
                                     "An order with status %s cannot be canceled." % o["status"])
            o["status"] = "canceled"
            self.st["cancellations"].append({"order_id": o["id"], "note": note, "time": iso(utcnow())})
            return 204, None

    def revoke(self, o, via, headers, raw, missing):
        body, bad = self.parse_json_object(headers, raw)
        if bad:
            return bad
        c = Checker()
        c.known(body, {"comments", "comment", "skip_approval", "revocation_reason"}, "")
        comments = c.text(body, "comments", "comments", required=False) or \
            c.text(body, "comment", "comment", required=False)
        reason = c.text(body, "revocation_reason", "revocation_reason", required=False,
                        choices=REVOCATION_REASONS)
        skip = body.get("skip_approval")
        if skip is not None and not isinstance(skip, bool):
            c.add("invalid_value", "skip_approval", "skip_approval must be a boolean.")
        if c.errors:
            return 400, {"errors": c.errors}
        with self.lock:
            if not o:
                return 404, err_body(missing, "The specified %s was not found." % missing.split("|")[1])
            if o["status"] != "issued":
                return 400, err_body("invalid_certificate_status",
                                     "Only issued certificates can be revoked (status: %s)." % o["status"])
            now = iso(utcnow())
            rec = {"order_id": o["id"], "certificate_id": o["certificate_id"], "via": via,
                   "comments": comments, "revocation_reason": reason, "skip_approval": skip is True,
                   "time": now, "status": "revoked" if skip else "pending"}
            self.st["revocations"].append(rec)
            req = {"id": self.new_id("request"), "date": now, "type": "revoke", "status": "pending",
                   "comments": comments}
            o["requests"].append(req)
            rec["request_id"] = req["id"]
            if skip:  # revoked at once: the revoke request is listed as approved
                req.update(status="approved", date_processed=now)
                o["status"] = "revoked"
                return 204, None
            return 201, dict(req, requester={"id": 1, "first_name": "Sandbox", "last_name": "Admin",
                                             "email": "admin@sandbox.invalid"})

    def request_info(self, rid):
        with self.lock:
            o, r = self.find_request(int(rid))
            if not r:
                return 404, err_body("not_found|request", "The specified request was not found.")
            return 200, dict(r, order={"id": o["id"], "certificate": {"common_name": o["common_name"]},
                                       "product": self.product_view(o["product"])})

    def request_status(self, rid, headers, raw):
        body, bad = self.parse_json_object(headers, raw)
        if bad:
            return bad
        c = Checker()
        c.known(body, {"status", "processor_comment"}, "")
        st = c.text(body, "status", "status", choices=("approved", "rejected"))
        c.text(body, "processor_comment", "processor_comment", required=False)
        if c.errors:
            return 400, {"errors": c.errors}
        with self.lock:
            o, r = self.find_request(int(rid))
            if not r:
                return 404, err_body("not_found|request", "The specified request was not found.")
            if r["status"] not in ("pending", "submitted"):
                return 400, err_body("invalid_request_status", "The request is already %s." % r["status"])
            if r["type"] == "new_request":
                if o["status"] not in ("pending", "needs_approval"):
                    return 400, err_body("invalid_order_status", "The order is %s." % o["status"])
                self.finish(o, "issued" if st == "approved" else "rejected")
            else:
                r["status"], r["date_processed"] = st, iso(utcnow())
                for rec in self.st["revocations"]:
                    if rec.get("request_id") == r["id"]:
                        rec["status"] = "revoked" if st == "approved" else "rejected"
                if st == "approved":
                    o["status"] = "revoked"
            return 204, None

    def chain(self, o):
        if not o:
            return 404, err_body("not_found|certificate", "The specified certificate was not found.")
        return 200, {"intermediates": [{"subject_common_name": "Sandbox PKIo Test Person CA - G1",
                                        "pem": self.ossl.root_inter("intermediate")},
                                       {"subject_common_name": "Sandbox PKIo Test Root CA - G1",
                                        "pem": self.ossl.root_inter("root")}]}

    ROUTES = [
        ("POST", r"/order/certificate/([^/]+)", "order_create"),
        ("GET", r"/order/certificate", "order_list"),
        ("GET", r"/order/certificate/([^/]+)", "order_info"),
        ("PUT", r"/order/certificate/([^/]+)/status", "order_status"),
        ("PUT", r"/order/certificate/([^/]+)/revoke", "order_revoke"),
        ("GET", r"/certificate/download/order/([^/]+)/format/([^/]+)", "certificate_download_by_order"),
        ("GET", r"/certificate/([^/]+)/download/format/([^/]+)", "certificate_download"),
        ("PUT", r"/certificate/([^/]+)/revoke", "certificate_revoke"),
        ("GET", r"/certificate/([^/]+)/chain", "certificate_chain"),
        ("GET", r"/request/(\d+)", "request_info"),
        ("PUT", r"/request/(\d+)/status", "request_status"),
    ]

    def route(self, method, path):
        if path.startswith(API + "/"):
            for m, rx, name in self.ROUTES:
                g = re.fullmatch(API + rx, path)
                if g and m == method:
                    return name, [urllib.parse.unquote(x) for x in g.groups()]
        return "unknown", []

    def api(self, method, path, query, headers, raw):
        name, a = self.route(method, path)
        key = headers.get("X-DC-DEVKEY")
        if key not in self.keys:
            return 401, err_body("access_denied|invalid_api_key",
                                 "The X-DC-DEVKEY API key is missing or invalid.")
        with self.lock:
            window = self.limiter.check(key, time.monotonic())
            if window:
                self.st["violations"].append({"time": iso(utcnow()), "window": window,
                                              "api_key": mask_key(key), "method": method, "path": path})
                return 429, err_body("request_limit_exceeded", LIMIT_MSG)
        if name == "unknown":
            return 404, err_body("not_found|route", "The specified route was not found.")
        if name == "order_create":
            return self.create_order(a[0], headers, raw)  # CSR checks run outside the lock
        with self.lock:
            if name == "order_list":
                return self.list_orders(query)
            elif name == "order_info":
                return self.get_order(a[0])
            elif name == "order_status":
                return self.cancel(a[0], headers, raw)
            elif name == "order_revoke":
                return self.revoke(self.find_order(a[0]), "order", headers, raw, "not_found|order")
            elif name == "certificate_revoke":
                return self.revoke(self.find_cert(a[0]), "certificate", headers, raw,
                                   "not_found|certificate")
            elif name == "certificate_download":
                return self.download(self.find_cert(a[0]), a[1], "not_found|certificate")
            elif name == "certificate_download_by_order":
                return self.download(self.find_order(a[0]), a[1], "not_found|order")
            elif name == "certificate_chain":
                return self.chain(self.find_cert(a[0]))
            elif name == "request_info":
                return self.request_info(a[0])
            return self.request_status(a[0], headers, raw)

    # -- control API
    def control(self, method, path, raw):
        try:
            body = json.loads(raw.decode("utf-8")) if raw else {}
        except (ValueError, UnicodeDecodeError):
            return 400, err_body("bad_request_format", "The request body is not valid JSON.")
        with self.lock:
            if method == "GET" and path == "/__sandbox/state":
                return 200, self.state_view()
            if method == "POST" and path == "/__sandbox/faults":
                try:
                    self.add_faults(body)
                except ValueError as e:
                    return 400, err_body("invalid_value|faults", str(e))
                return 200, {"faults": self.faults}
            if method == "POST" and path == "/__sandbox/behavior":
                if not isinstance(body, dict):
                    return 400, err_body("bad_request_format", "The request body must be a JSON object.")
                b, n = body.get("behavior", self.behavior), body.get("issue_after_polls", self.after)
                cp = body.get("csr_presentation", self.csr_presentation)
                lag = body.get("list_lag_s", self.list_lag)
                npres = body.get("name_presentation", self.name_presentation)
                unknown = sorted(set(body) - set(self.settings()))
                if unknown:
                    return 400, err_body("unknown_field|" + unknown[0], "Known fields: %s."
                                         % ", ".join(self.settings()))
                if b not in BEHAVIORS or isinstance(n, bool) or not isinstance(n, int) or n < 0:
                    return 400, err_body("invalid_value|behavior", "behavior: %s; issue_after_polls >= 0"
                                         % "|".join(BEHAVIORS))
                if cp not in CSR_PRESENTATIONS:
                    return 400, err_body("invalid_value|csr_presentation", "csr_presentation: %s"
                                         % "|".join(CSR_PRESENTATIONS))
                if isinstance(lag, bool) or not isinstance(lag, (int, float)) or not 0 <= lag < 1e6:
                    return 400, err_body("invalid_value|list_lag_s", "list_lag_s: seconds >= 0")
                if npres not in NAME_PRESENTATIONS:
                    return 400, err_body("invalid_value|name_presentation", "name_presentation: %s"
                                         % "|".join(NAME_PRESENTATIONS))
                self.behavior, self.after, self.csr_presentation = b, n, cp
                self.list_lag, self.name_presentation = float(lag), npres
                return 200, self.settings()
            if method == "POST" and path == "/__sandbox/individuals":
                try:
                    self.add_individuals(body)
                except ValueError as e:
                    return 400, err_body("invalid_value|individuals", str(e))
                self.save()
                return 200, {"individuals": self.individuals_view()}
            m = re.fullmatch(r"/__sandbox/order/(\d+)", path)
            if method == "POST" and m:
                return self.force_order(int(m.group(1)), body)
            if method == "POST" and path == "/__sandbox/limits":
                for k, v in body.items():
                    m = re.fullmatch(r"(burst|sustained)_(limit|window)", k)
                    if not m or isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
                        return 400, err_body("invalid_value|" + k, "expected {burst|sustained}_{limit|window} > 0")
                    self.limiter.windows[m.group(1)][m.group(2) == "window"] = v
                return 200, {"limits": self.limiter.windows}
            if method == "POST" and path == "/__sandbox/reset":
                self.fresh()
                self.faults = []
                return 200, {"reset": True}
        return 404, err_body("not_found|route", "Unknown control route.")

    def settings(self):
        return {"behavior": self.behavior, "issue_after_polls": self.after,
                "csr_presentation": self.csr_presentation, "list_lag_s": self.list_lag,
                "name_presentation": self.name_presentation}

    def individuals_view(self):
        return [self.st["individuals"][i] for i in sorted(self.st["individuals"])]

    def force_order(self, oid, body):
        """POST /__sandbox/order/{id} {"status"?, "valid_till"?}: force an order's state."""
        if not isinstance(body, dict):
            return 400, err_body("bad_request_format", "The request body must be a JSON object.")
        c = Checker()
        c.known(body, {"status", "valid_till"}, "")
        st = c.text(body, "status", "status", required=False, regex=re.compile(r"^[a-z_]+$"),
                    hint=" (a status word such as issued, revoked, expired)")
        till = c.text(body, "valid_till", "valid_till", required=False, regex=DATE_RE,
                      hint=" (yyyy-MM-dd)")
        if till:
            try:
                datetime.date.fromisoformat(till)
            except ValueError:
                c.add("invalid_value", "valid_till", "valid_till is not a date.")
        if c.errors:
            return 400, {"errors": c.errors}
        o = self.st["orders"].get(oid)
        if not o:
            return 404, err_body("not_found|order", "The specified order was not found.")
        if st == "issued" and not o["cert"]:
            self.finish(o, "issued")  # a real certificate, so downloads work
        elif st:
            o["status"] = st
        if till:
            o["forced_valid_till"] = till
        self.save()
        return 200, {"order": self.order_view(o)}

    def state_view(self):
        per_key = collections.Counter(o["spki_sha256"] for o in self.st["orders"].values())
        orders = [{"id": o["id"], "product": o["product"], "status": o["status"],
                   "certificate_id": o["certificate_id"], "spki_sha256": o["spki_sha256"],
                   "csr": o["csr"], "polls": o["polls"], "created": o["created"],
                   "common_name": o["common_name"], "profile_option": o["profile_option"],
                   "is_rsassa_pss": o["is_rsassa_pss"],
                   "serial_number": o["cert"]["serial_number"] if o["cert"] else None,
                   "individual_id": o["individual"].get("id"),
                   "valid_till": o.get("forced_valid_till") or (o["cert"] or {}).get("valid_till"),
                   "requests": [dict(r) for r in o["requests"]]}
                  for o in self.st["orders"].values()]
        return {"orders": orders, "orders_per_key": dict(per_key),
                "requests": {"total": self.st["total"], "by_endpoint": self.st["counts"]},
                "rate_limit": {"exceeded": bool(self.st["violations"]),
                               "violations": self.st["violations"], "limits": self.limiter.windows},
                "revocations": self.st["revocations"], "cancellations": self.st["cancellations"],
                "faults_pending": [f for f in self.faults if f["count"] > 0],
                "faults_fired": self.st["faults_fired"], "warnings": self.st["warnings"],
                "individuals": self.individuals_view(), **self.settings(),
                "connections": self.st["connections"]}

    def count_connection(self, key, resumed):
        """A TLS connection carried its first API request (key: as sent)."""
        with self.lock:
            c = self.st.setdefault("connections", {"total": 0, "resumed": 0, "by_key": {}})
            c["total"] += 1
            c["resumed"] += bool(resumed)
            k = mask_key(key) or "(none)"
            c["by_key"][k] = c["by_key"].get(k, 0) + 1


# ---------------------------------------------------------------------------------- transport
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "CertCentralSandbox/1.0"
    timeout = 120
    disable_nagle_algorithm = True  # headers and body are separate writes
    sb = None  # Sandbox, set in main()

    def do_GET(self):
        self.dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (self.log_date_time_string(), fmt % args))

    def setup(self):
        super().setup()
        with self.sb.lock:
            self.sb.conn_seq = getattr(self.sb, "conn_seq", 0) + 1
            self.conn_id = self.sb.conn_seq  # this TCP + TLS connection, for requests.log
        self.conn_counted = False

    def send(self, status, body, headers=()):
        if body is None:
            ctype, data = None, b""
        elif isinstance(body, tuple):
            ctype, data = body
        else:
            ctype, data = "application/json", json.dumps(body).encode()
        self.send_response(status)
        if ctype:
            self.send_header("Content-Type", ctype)
        for k, v in headers:
            self.send_header(k, v)
        if status != 204:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if status != 204:
            self.wfile.write(data)

    def dispatch(self):
        sb = self.sb
        method, raw_path = self.command, self.path
        path, _, query = raw_path.partition("?")
        entry = {"time": iso(utcnow()), "method": method, "path": raw_path,
                 "api_key": mask_key(self.headers.get("X-DC-DEVKEY")), "body": None}
        length = self.headers.get("Content-Length") or "0"
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower() or \
                not length.isdigit() or int(length) > 1 << 20:
            self.close_connection = True
            sb.log(dict(entry, status=411, errors=["bad_request_format"]))
            return self.send(411, err_body("bad_request_format", "Send a Content-Length (max 1 MiB)."))
        raw = self.rfile.read(int(length))
        entry["body"] = mask_body(raw)
        if path.startswith("/__sandbox/"):
            status, body = sb.control(method, path, raw)
            entry.update(status=status, control=True)
            sb.log(entry)
            return self.send(status, body)
        entry["conn"] = self.conn_id
        if not self.conn_counted:
            self.conn_counted = True
            sb.count_connection(self.headers.get("X-DC-DEVKEY"),
                                getattr(self.connection, "session_reused", False))
        name, _ = sb.route(method, path)
        with sb.lock:
            sb.st["total"] += 1
            sb.st["counts"][name] = sb.st["counts"].get(name, 0) + 1
            for h in ("User-Agent",) + (("Content-Type",) if raw else ()):
                if not self.headers.get(h) and len(sb.st["warnings"]) < 100:
                    sb.st["warnings"].append("%s %s without %s" % (method, path, h))
        fault = sb.take_fault(method, raw_path)
        entry["fault"] = fault
        pre = self.faulted(fault)
        status, body, extra = pre or (None, None, ())
        if pre is None:
            if fault and fault.startswith(("slow:", "late:")):
                # Both wait BEFORE performing: every check (API key, rate limit, validation) and
                # the action itself (e.g. the order and its date_created) happen after S seconds.
                time.sleep(float(fault[5:]))
                entry["performed"] = iso(utcnow())
            try:
                status, body = sb.api(method, path, query, self.headers, raw)
            except Exception as e:  # a sandbox bug: answer 500 and keep serving
                sys.stderr.write("internal error on %s %s: %r\n" % (method, path, e))
                status, body = 500, err_body("internal_error", "Sandbox internal error: %s" % e)
            with sb.lock:
                sb.save()
            if fault == "lost":
                status = None
            elif fault == "wrong_type" and isinstance(body, (dict, list)):
                body = wrong_types(body)
            elif fault == "truncated" and body is not None:
                ctype, data = body if isinstance(body, tuple) else ("application/json", json.dumps(body).encode())
                body = (ctype, data[:len(data) // 2])
        entry["status"] = status
        if isinstance(body, dict) and "errors" in body and status:
            entry["errors"] = [e.get("code") for e in body["errors"] if isinstance(e, dict)]
        sb.log(entry)
        if status is None:  # drop / lost: close without any answer
            self.close_connection = True
            return None
        try:
            return self.send(status, body, extra)
        except OSError as e:  # the client gave up (e.g. timed out during slow:/late:)
            self.close_connection = True
            sys.stderr.write("answer to %s %s not delivered: %r\n" % (method, raw_path, e))
            return None

    @staticmethod
    def faulted(fault):
        """Faults that answer without acting: (status, body, headers), status None = drop.
        None when the request is to be performed."""
        if fault == "429":
            return 429, err_body("request_limit_exceeded", LIMIT_MSG), ()
        if fault and fault.startswith("retry_after:"):
            return 429, err_body("request_limit_exceeded", LIMIT_MSG), (("Retry-After", fault[12:]),)
        if fault and fault.startswith("status:"):
            code = int(fault[7:])
            return code, err_body("sandbox_injected_fault", "Injected HTTP %d." % code), ()
        if fault == "drop":
            return None, None, ()
        if fault == "garbage":
            return 200, ("application/json", b"<<this is not JSON>> {\"id\": "), ()
        if fault == "html":
            return 502, ("text/html", b"<html><head><title>502 Bad Gateway</title></head><body>"
                                      b"<center><h1>502 Bad Gateway</h1></center></body></html>\n"), ()
        return None


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        sys.stderr.write("connection error from %s: %s\n" % (client_address, sys.exc_info()[1]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--api-key", action="append")
    ap.add_argument("--issue-after-polls", type=int, default=1)
    ap.add_argument("--behavior", choices=BEHAVIORS, default="issue")
    ap.add_argument("--faults")
    ap.add_argument("--csr-presentation", choices=CSR_PRESENTATIONS, default="rewrapped")
    ap.add_argument("--list-lag", type=float, default=0.0, metavar="S")
    ap.add_argument("--individuals", metavar="FILE")
    ap.add_argument("--name-presentation", choices=NAME_PRESENTATIONS, default="as_sent")
    ap.add_argument("--burst-limit", type=int, default=100)
    ap.add_argument("--burst-window", type=float, default=5.0)
    ap.add_argument("--sustained-limit", type=int, default=1000)
    ap.add_argument("--sustained-window", type=float, default=180.0)
    args = ap.parse_args()
    if args.issue_after_polls < 0:
        ap.error("--issue-after-polls must be >= 0")
    if not 0 <= args.list_lag < 1e6:
        ap.error("--list-lag must be >= 0")
    args.dir = os.path.abspath(args.dir)
    os.makedirs(args.dir, exist_ok=True)
    for n in ("ready", "pid"):
        if os.path.exists(os.path.join(args.dir, n)):
            os.unlink(os.path.join(args.dir, n))
    sb = Sandbox(args)
    if args.faults:
        with open(args.faults) as f:
            sb.add_faults(json.load(f))
    if args.individuals:
        try:
            with open(args.individuals) as f:
                sb.add_individuals(json.load(f))
        except (OSError, ValueError) as e:
            ap.error("--individuals %s: %s" % (args.individuals, e))
    created = sb.ossl.ensure_pki()
    for src, dst in (("tls-ca.pem", "tls-ca.pem"), ("root.pem", "root.pem"),
                     ("intermediate.pem", "intermediate.pem")):
        with open(sb.ossl.path(src)) as f:
            write_atomic(os.path.join(args.dir, dst), f.read())
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(sb.ossl.path("server.pem"), sb.ossl.path("server.key"))
    Handler.sb = sb
    server = Server(("127.0.0.1", args.port), Handler)
    server.socket = ctx.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    port = server.server_address[1]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    t.start()
    write_atomic(os.path.join(args.dir, "pid"), "%d\n" % os.getpid())
    write_atomic(os.path.join(args.dir, "port"), "%d\n" % port)
    write_atomic(os.path.join(args.dir, "url"), "https://127.0.0.1:%d%s\n" % (port, API))
    write_atomic(os.path.join(args.dir, "ready"), "%d\n" % port)
    sys.stderr.write("sandbox ready on https://127.0.0.1:%d%s (pki %s)\n"
                     % (port, API, "created" if created else "reused"))
    while not stop.wait(0.1):
        pass
    server.shutdown()
    server.server_close()
    with sb.lock:
        sb.save()
    for n in ("ready", "pid"):
        try:
            os.unlink(os.path.join(args.dir, n))
        except FileNotFoundError:
            pass
    sys.stderr.write("sandbox stopped\n")


if __name__ == "__main__":
    main()
