#!/usr/bin/env bash
# The Debian package: a scratch configure + build of the source (PKIO_TESTS=OFF, so only the
# program), `cpack -G DEB`, then
#   1. metadata and contents (dpkg-deb -I / -c): name, version = the binary's --version,
#      section, Depends (with the libcurl minimum the code needs: libcurl4 (>= X), X not below
#      CMakeLists.txt's libcurl>=Y nor below what the curl symbols used in agent/ need),
#      maintainer scripts, exactly the expected files (the nl and en message catalogs among
#      them), owned by root;
#   2. the files (dpkg -x into a temp dir): --version and the example config with the host's
#      libraries, `systemd-analyze verify` and `security --offline` on the packaged unit
#      (exposure <= 2.0), no executable stack in the binary, its libraries and the modules it
#      loads, and no writable+executable mapping while it generates a key and signs a PSS CSR
#      on SoftHSM2 through the engine (what MemoryDenyWriteExecute=yes would refuse);
#   3. a real install: `dpkg -i`, reinstall, `systemctl enable`, `dpkg -r`, `dpkg -P` with the
#      maintainer scripts, in a chroot made of an overlay of the host's root on a tmpfs, in a
#      private mount namespace. The host's own dpkg database, users and files are never
#      written (everything written lands in the tmpfs). Dependencies are checked for real
#      against the packages installed on the host (no --force-depends). debootstrap would give
#      a clean Debian 12 instead, but needs a mirror and minutes; the overlay takes seconds.
#      The installed binary speaks Dutch with --lang nl: it finds the packaged catalogs.
#   4. a build configured for /usr/local: cpack refuses to package it (its binary would look
#      for the catalogs in /usr/local/share/locale, the .deb ships them in /usr/share/locale).
source "$PKIO_SRC/tests/lib/common.sh"
export LC_ALL=C

need()
{
    local c
    for c in "$@"; do
        command -v "${c%%:*}" >/dev/null 2>&1 ||
            fail "required command '${c%%:*}' not found (apt-get install ${c#*:})"
    done
}

# --- phase 3, run as `unshare -m bash deb_package.sh --in-overlay DEB FILELIST` -------------
overlay_phase()
{
    local deb=$1 filelist=$2 t m st uid gid f
    t=$(pkio_tmpdir)
    m=$t/root
    mkdir "$t/layers" "$m"
    mount -t tmpfs -o mode=0700 tmpfs "$t/layers" || fail "cannot mount a tmpfs"
    pkio_on_exit "umount -l '$t/layers'"
    mkdir "$t/layers/up" "$t/layers/work"
    mount -t overlay overlay -o "lowerdir=/,upperdir=$t/layers/up,workdir=$t/layers/work" "$m" ||
        fail "cannot mount an overlay of / (needs root and overlayfs)"
    # Detach everything under $m before common.sh removes PKIO_ROOT, so that its rm -rf never
    # walks the overlay (a whole view of the host) or /proc.
    pkio_on_exit "umount -R -l '$m'"
    # Never run dpkg --root on anything but the overlay.
    [[ $(findmnt -n -o FSTYPE --mountpoint "$m") == overlay ]] || fail "$m is not the overlay"
    touch "$m/dev/null"
    mount --bind /dev/null "$m/dev/null"
    mount -t proc proc "$m/proc"

    local host_state
    host_state=$(dpkg-query -W -f='${db:Status-Abbrev}' pkio-agent 2>/dev/null || true)
    [[ $host_state != ii* ]] ||
        note_installed="(pkio-agent is installed on the host: this is an upgrade)"

    expect_exit 0 -- dpkg --root="$m" -i "$deb"
    [[ $(dpkg-query --root="$m" -W -f='${db:Status-Abbrev}' pkio-agent) == "ii " ]] ||
        fail "pkio-agent not installed in the chroot after dpkg -i: $(cat "$OUT" "$ERR")"
    while read -r f; do
        [[ -e $m/$f ]] || fail "installed package lacks $f"
    done <"$filelist"
    pass "dpkg -i in the chroot: maintainer scripts ran, Depends met by the host's packages" \
        "${note_installed:-}"

    # The system user and the directories postinst creates.
    IFS=: read -r _ _ uid gid _ home shell < <(chroot "$m" getent passwd pkio-agent) ||
        fail "postinst did not create the user pkio-agent"
    [[ $uid -lt 1000 && $home == /var/lib/pkio-agent && $shell == /usr/sbin/nologin ]] ||
        fail "pkio-agent user: uid $uid home $home shell $shell"
    [[ $(chroot "$m" getent group pkio-agent | cut -d: -f3) == "$gid" ]] ||
        fail "pkio-agent is not the primary group of the pkio-agent user"
    ogid=$(chroot "$m" getent group pkio-officers | cut -d: -f3)
    [[ -n $ogid && $ogid -lt 1000 ]] || fail "postinst did not create the system group pkio-officers"
    chroot "$m" id -nG pkio-agent | tr ' ' '\n' | grep -qx pkio-officers ||
        fail "pkio-agent is not a member of pkio-officers"
    st=$(stat -c '%a %u:%g' "$m/var/lib/pkio-agent")
    [[ $st == "750 $uid:$ogid" ]] || fail "/var/lib/pkio-agent is '$st', expected 750 $uid:$ogid"
    st=$(stat -c '%a %u:%g' "$m/etc/pkio-agent")
    [[ $st == "750 0:$ogid" ]] || fail "/etc/pkio-agent is '$st', expected 750 0:$ogid"
    pass "system user pkio-agent ($uid:$gid, nologin, in pkio-officers), group pkio-officers ($ogid), /var/lib/pkio-agent 0750 and /etc/pkio-agent 0750 for the group"

    # What the daemon user can do: read a key file it owns in /etc/pkio-agent, use its state.
    install -m 0600 -o "$uid" -g "$gid" /dev/null "$m/etc/pkio-agent/api-key"
    chroot --userspec="$uid:$gid" "$m" test -r /etc/pkio-agent/api-key ||
        fail "the pkio-agent user cannot read /etc/pkio-agent/api-key (0600, its own)"
    expect_exit 0 -- chroot --userspec="$uid:$gid" "$m" /usr/bin/pkio-agent \
        --state-dir /var/lib/pkio-agent status
    expect_exit 0 -- chroot "$m" /usr/bin/pkio-agent --version
    # What the daily timer runs, as the daily timer runs it: nothing enrolled, nothing due.
    expect_exit 0 -- chroot --userspec="$uid:$gid" "$m" /usr/bin/pkio-agent \
        --state-dir /var/lib/pkio-agent expiring
    pass "as pkio-agent: key file readable, 'status' and 'expiring' work on /var/lib/pkio-agent"

    # The message catalogs: the installed binary finds /usr/share/locale/nl/.../pkio-agent.mo
    # by itself (no PKIO_LOCALEDIR, which the test suite sets for the build tree).
    expect_exit 2 -- chroot "$m" env -u PKIO_LOCALEDIR -u LANGUAGE LC_ALL=C \
        /usr/bin/pkio-agent --lang nl status --bogus
    grep -qF "zie 'pkio-agent --help'" "$ERR" ||
        fail "the installed pkio-agent --lang nl does not speak Dutch (catalog not found where" \
            "the binary looks for it): $(cat "$ERR")"
    expect_exit 2 -- chroot "$m" env -u PKIO_LOCALEDIR -u LANGUAGE LC_ALL=C \
        /usr/bin/pkio-agent --lang en status --bogus
    grep -qF "see 'pkio-agent --help'" "$ERR" || fail "--lang en is not English: $(cat "$ERR")"
    pass "installed binary: --lang nl reads the packaged Dutch catalog, --lang en English"

    # An officer: a member of pkio-officers (no sudo) reads status and the audit log, and
    # cannot read the API key.
    chroot "$m" useradd --no-create-home --shell /usr/sbin/nologin --groups pkio-officers \
        officer1 || fail "useradd officer1 in the chroot"
    IFS=: read -r _ _ ouid ougid _ < <(chroot "$m" getent passwd officer1)
    as_officer=(chroot --userspec="$ouid:$ougid" --groups="$ougid,$ogid" "$m")
    "${as_officer[@]}" test -r /etc/pkio-agent/api-key && fail "an officer can read the API key file"
    "${as_officer[@]}" test -r /etc/pkio-agent || fail "an officer cannot read /etc/pkio-agent"
    expect_exit 0 -- "${as_officer[@]}" /usr/bin/pkio-agent --state-dir /var/lib/pkio-agent status
    expect_exit 0 -- "${as_officer[@]}" /usr/bin/pkio-agent --state-dir /var/lib/pkio-agent \
        audit verify
    pass "as an officer (member of pkio-officers): 'status' and 'audit verify' work, the API key is out of reach"

    # Enabling hooks the unit into boot and smartcard.target ([Install] section).
    expect_exit 0 -- systemctl --root="$m" enable pkio-agent.service
    for f in multi-user smartcard; do
        [[ -L $m/etc/systemd/system/$f.target.wants/pkio-agent.service ]] ||
            fail "systemctl enable made no $f.target.wants link: $(cat "$ERR")"
    done
    pass "systemctl enable: wanted by multi-user.target and smartcard.target"
    expect_exit 0 -- systemctl --root="$m" enable pkio-agent-expiring.timer
    [[ -L $m/etc/systemd/system/timers.target.wants/pkio-agent-expiring.timer ]] ||
        fail "systemctl enable made no timers.target.wants link for the timer: $(cat "$ERR")"
    expect_exit 0 -- systemctl --root="$m" disable pkio-agent-expiring.timer
    [[ ! -e $m/etc/systemd/system/timers.target.wants/pkio-agent-expiring.timer ]] ||
        fail "systemctl disable left the timer's link"
    pass "systemctl enable/disable of pkio-agent-expiring.timer: wanted by timers.target"

    expect_exit 0 -- dpkg --root="$m" -i "$deb"
    [[ $(stat -c '%a' "$m/var/lib/pkio-agent") == 750 ]] || fail "reinstall changed the state dir"
    pass "reinstall (postinst configure with a previous version) succeeds"

    # remove: program files go, state and configuration stay.
    mkdir -p "$m/var/lib/pkio-agent/jobs"
    echo '{}' >"$m/var/lib/pkio-agent/jobs/test.json"
    echo '{}' >"$m/etc/pkio-agent/config.json"
    expect_exit 0 -- dpkg --root="$m" -r pkio-agent
    while read -r f; do
        [[ ! -e $m/$f ]] || fail "dpkg -r left $f"
    done <"$filelist"
    [[ ! -e $m/usr/share/doc/pkio-agent ]] || fail "dpkg -r left /usr/share/doc/pkio-agent"
    [[ -f $m/var/lib/pkio-agent/jobs/test.json && -f $m/etc/pkio-agent/config.json ]] ||
        fail "dpkg -r removed state or configuration"
    [[ $(dpkg-query --root="$m" -W -f='${db:Status-Abbrev}' pkio-agent) == "rc " ]] ||
        fail "after dpkg -r the package should be in state rc (config-files)"
    pass "dpkg -r: files gone, /var/lib/pkio-agent and /etc/pkio-agent kept"

    # purge: state and enablement links go; the administrator's config stays.
    expect_exit 0 -- dpkg --root="$m" -P pkio-agent
    [[ ! -e $m/var/lib/pkio-agent ]] || fail "dpkg -P left /var/lib/pkio-agent"
    for f in multi-user smartcard; do
        [[ ! -L $m/etc/systemd/system/$f.target.wants/pkio-agent.service ]] ||
            fail "dpkg -P left the $f.target.wants link"
    done
    [[ -f $m/etc/pkio-agent/config.json ]] || fail "dpkg -P deleted the administrator's config.json"
    chroot "$m" getent passwd pkio-agent >/dev/null || fail "dpkg -P deleted the system user"
    chroot "$m" getent group pkio-officers >/dev/null || fail "dpkg -P deleted the officers' group"
    [[ -z $(dpkg-query --root="$m" -W -f='${db:Status-Abbrev}' pkio-agent 2>/dev/null) ||
        $(dpkg-query --root="$m" -W -f='${db:Status-Abbrev}' pkio-agent) == "un " ]] ||
        fail "package still known after purge"
    pass "dpkg -P: /var/lib/pkio-agent and enablement links gone; config.json, user and groups kept"

    # Purge with an empty /etc/pkio-agent removes it too.
    expect_exit 0 -- dpkg --root="$m" -i "$deb"
    rm -f "$m/etc/pkio-agent/config.json" "$m/etc/pkio-agent/api-key"
    expect_exit 0 -- dpkg --root="$m" -P pkio-agent
    [[ ! -e $m/etc/pkio-agent ]] || fail "dpkg -P left an empty /etc/pkio-agent"
    pass "dpkg -P removes /etc/pkio-agent when it is empty"
}

if [[ ${1:-} == --in-overlay ]]; then
    overlay_phase "$2" "$3"
    exit 0
fi

# --- build the package ----------------------------------------------------------------------
need cmake:cmake cpack:cmake dpkg-deb:dpkg dpkg-shlibdeps:dpkg-dev systemd-analyze:systemd \
    man:man-db readelf:binutils strace:strace unshare:util-linux findmnt:util-linux \
    chroot:coreutils openssl:openssl python3:python3 ps:procps dpkg-architecture:dpkg-dev
[[ $(id -u) -eq 0 ]] || fail "needs root (private mount namespace, overlay, chroot)"

W=$(pkio_tmpdir)
B=$W/build
# As README.md and Debian's dh build it: the binary's compiled-in paths (the catalogs' directory)
# must be those of the package, which installs under /usr.
expect_exit 0 -- cmake -S "$PKIO_SRC" -B "$B" -DPKIO_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_INSTALL_PREFIX=/usr
[[ -f $B/CPackConfig.cmake ]] ||
    fail "no CPackConfig.cmake: agent/install.cmake is not include()d by CMakeLists.txt"
expect_exit 0 -- cmake --build "$B" -j2
expect_exit 0 -- cpack -G DEB -B "$W/pkg" --config "$B/CPackConfig.cmake"
debs=("$W"/pkg/*.deb)
[[ ${#debs[@]} -eq 1 && -f ${debs[0]} ]] || fail "cpack made no single .deb: $(ls "$W/pkg")"
DEB=${debs[0]}
pass "cpack -G DEB built $(basename "$DEB")"

# --- 1. metadata ----------------------------------------------------------------------------
field()
{
    dpkg-deb -f "$DEB" "$1"
}
version=$("$B/agent/pkio-agent" --version | awk '{print $2}')
[[ -n $version ]] || fail "pkio-agent --version printed no version"
[[ $(field Package) == pkio-agent ]] || fail "Package: $(field Package)"
[[ $(field Version) == "$version-1" ]] || fail "Version: $(field Version), binary says $version"
[[ $(field Architecture) == "$(dpkg --print-architecture)" ]] || fail "Architecture: $(field Architecture)"
[[ $(field Section) == admin ]] || fail "Section: $(field Section)"
[[ $(field Maintainer) == *?"<"*@*">" ]] || fail "Maintainer: $(field Maintainer)"
[[ -n $(field Description) ]] || fail "no Description"
depends=$(field Depends)
for p in libc6 libssl3 libcurl4 libjson-c5 libengine-pkcs11-openssl opensc-pkcs11 adduser; do
    [[ ", $depends," == *", $p "* || ", $depends," == *", $p,"* ]] || fail "Depends lacks $p: $depends"
done
[[ $(field Recommends) == *pcscd* ]] || fail "Recommends lacks pcscd"

# The libcurl minimum. dpkg-shlibdeps derives libcurl4's version from the functions the binary
# links (curl_easy_setopt is old), not from the options it passes; the options are what need a
# newer libcurl (an older one answers CURLE_UNKNOWN_OPTION). When each curl symbol below was
# added, from curl's docs/libcurl/symbols-in-versions: the newest the code uses sets the floor.
cmake_min=$(sed -n 's/.*pkg_check_modules(CURL .*libcurl>=\([0-9.]*\).*/\1/p' "$PKIO_SRC/CMakeLists.txt")
[[ -n $cmake_min ]] || fail "no libcurl>=VERSION in CMakeLists.txt's pkg_check_modules(CURL ...)"
while [[ $cmake_min =~ ^[0-9]+(\.[0-9]+)?$ ]]; do cmake_min+=.0; done # 7.85 is 7.85.0 to CMake
floor=0 floor_sym=none
while read -r sym ver; do
    if grep -rqw --include="*.c" -- "$sym" "$PKIO_SRC"/agent && dpkg --compare-versions "$ver" gt "$floor"; then
        floor=$ver floor_sym=$sym
    fi
done <<'SYMBOLS'
CURLINFO_QUEUE_TIME_T 8.6.0
CURLOPT_SERVER_RESPONSE_TIMEOUT_MS 8.6.0
CURLINFO_CONN_ID 8.2.0
CURLINFO_XFER_ID 8.2.0
CURLOPT_CA_CACHE_TIMEOUT 7.87.0
CURLOPT_QUICK_EXIT 7.87.0
CURLOPT_PROTOCOLS_STR 7.85.0
CURLOPT_REDIR_PROTOCOLS_STR 7.85.0
curl_easy_header 7.83.0
curl_easy_nextheader 7.83.0
curl_url_strerror 7.80.0
CURLINFO_REFERER 7.76.0
CURLOPT_SSL_EC_CURVES 7.73.0
CURLE_HTTP3 7.68.0
CURLINFO_RETRY_AFTER 7.66.0
curl_url 7.62.0
CURLINFO_CONNECT_TIME_T 7.61.0
SYMBOLS
[[ $floor != 0 ]] || fail "none of the listed curl symbols is in agent/: is the list stale?"
dpkg --compare-versions "$cmake_min" ge "$floor" ||
    fail "CMakeLists.txt asks for libcurl>=$cmake_min, but agent/ uses $floor_sym (curl $floor)"
deb_curl=$(tr ',' '\n' <<<"$depends" | sed -n 's/^ *libcurl4 (>= \([^)]*\)).*/\1/p' | sort -V | tail -n 1)
[[ -n $deb_curl ]] || fail "Depends names no libcurl4 (>= VERSION): $depends"
dpkg --compare-versions "$deb_curl" ge "$floor" ||
    fail "Depends: libcurl4 (>= $deb_curl), but agent/ uses $floor_sym (curl $floor): $depends"
dpkg --compare-versions "$deb_curl" ge "$cmake_min" ||
    fail "Depends: libcurl4 (>= $deb_curl) is below CMakeLists.txt's libcurl>=$cmake_min"
pass "libcurl minimum: Depends libcurl4 (>= $deb_curl), CMake libcurl>=$cmake_min; the newest" \
    "curl symbol agent/ uses is $floor_sym (curl $floor)"
dpkg-deb -I "$DEB" >"$W/info.txt"
for s in postinst prerm postrm; do
    grep -qE "^ +[0-9]+ bytes, +[0-9]+ lines +\* +$s +#!/bin/sh" "$W/info.txt" ||
        fail "maintainer script $s missing or not executable: $(cat "$W/info.txt")"
done
pass "control: pkio-agent $version-1, section admin, Depends: $depends"

# Every regular file, with mode and owner; nothing else (no test programs, no build paths).
dpkg-deb -c "$DEB" | awk '$1 !~ /^d/ {print $1, $2, $6}' | sort >"$W/contents.txt"
cat >"$W/expected.txt" <<'EOF'
-rw-r--r-- root/root ./usr/lib/systemd/system/pkio-agent-expiring.service
-rw-r--r-- root/root ./usr/lib/systemd/system/pkio-agent-expiring.timer
-rw-r--r-- root/root ./usr/lib/systemd/system/pkio-agent.service
-rw-r--r-- root/root ./usr/lib/udev/rules.d/70-pkio-agent.rules
-rw-r--r-- root/root ./usr/share/doc/pkio-agent/LICENSE
-rw-r--r-- root/root ./usr/share/doc/pkio-agent/README.md
-rw-r--r-- root/root ./usr/share/doc/pkio-agent/config.example.json
-rw-r--r-- root/root ./usr/share/doc/pkio-agent/copyright
-rw-r--r-- root/root ./usr/share/locale/en/LC_MESSAGES/pkio-agent.mo
-rw-r--r-- root/root ./usr/share/locale/nl/LC_MESSAGES/pkio-agent.mo
-rw-r--r-- root/root ./usr/share/man/man5/pkio-agent.conf.5.gz
-rw-r--r-- root/root ./usr/share/man/man8/pkio-agent.8.gz
-rwxr-xr-x root/root ./usr/bin/pkio-agent
EOF
sort -o "$W/expected.txt" "$W/expected.txt"
diff -u "$W/expected.txt" "$W/contents.txt" >"$W/contents.diff" ||
    fail "package contents differ from the expected list: $(cat "$W/contents.diff")"
awk '{sub(/^\./, "", $3); print $3}' "$W/contents.txt" >"$W/files.txt"
for page in man8/pkio-agent.8 man5/pkio-agent.conf.5; do
    dpkg-deb --fsys-tarfile "$DEB" | tar -xOf - "./usr/share/man/$page.gz" | gzip -dc |
        cmp -s - "$PKIO_SRC/docs/${page#*/}" || fail "packaged $page.gz is not docs/${page#*/}"
done
for lang in nl en; do
    dpkg-deb --fsys-tarfile "$DEB" | tar -xOf - "./usr/share/locale/$lang/LC_MESSAGES/pkio-agent.mo" |
        cmp -s - "$B/locale/$lang/LC_MESSAGES/pkio-agent.mo" ||
        fail "packaged $lang catalog is not the one built from po/$lang.po"
done
pass "contents: binary, 2 gzipped man pages, udev rules, systemd units (watch; daily expiring service and timer), 4 docs, nl and en message catalogs; all root-owned"

# --- 2. the files ---------------------------------------------------------------------------
X=$W/x
expect_exit 0 -- dpkg-deb -x "$DEB" "$X"
expect_exit 0 -- "$X/usr/bin/pkio-agent" --version
[[ $(cat "$OUT") == "pkio-agent $version" ]] || fail "packaged --version: $(cat "$OUT")"
cmp -s "$X/usr/lib/udev/rules.d/70-pkio-agent.rules" "$PKIO_SRC/udev/70-pkio-agent.rules" ||
    fail "packaged rules differ from udev/70-pkio-agent.rules"
state=$(pkio_tmpdir)
expect_exit 0 -- "$X/usr/bin/pkio-agent" --config "$X/usr/share/doc/pkio-agent/config.example.json" \
    --state-dir "$state" status
pass "packaged binary runs (--version $version) and accepts the packaged config.example.json"

UNIT=$X/usr/lib/systemd/system/pkio-agent.service
[[ $(sed -n 's/^ExecStart=//p' "$UNIT") == "/usr/bin/pkio-agent watch" ]] ||
    fail "ExecStart is '$(sed -n 's/^ExecStart=//p' "$UNIT")', expected /usr/bin/pkio-agent watch"
for kv in Type=notify NotifyAccess=main User=pkio-agent Group=pkio-officers \
    SupplementaryGroups=pkio-agent \
    StateDirectory=pkio-agent StateDirectoryMode=0750 ConfigurationDirectory=pkio-agent \
    UMask=0077 NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes PrivateTmp=yes \
    MemoryDenyWriteExecute=yes DevicePolicy=closed CapabilityBoundingSet= \
    SystemCallFilter=@system-service SystemCallArchitectures=native \
    "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK" KillSignal=SIGTERM \
    Restart=on-failure; do
    grep -qxF "$kv" "$UNIT" || fail "unit lacks '$kv'"
done
# systemd-analyze needs the units the service refers to: give it a root with the host's
# system units and the packaged files. Documentation=man: pages resolve through MANPATH.
R=$W/analyze-root
mkdir -p "$R/usr/lib/systemd"
cp -a /usr/lib/systemd/system "$R/usr/lib/systemd/" || fail "cannot copy the host's units"
cp -a "$X/." "$R/"
MANPATH=$X/usr/share/man expect_exit 0 -- systemd-analyze verify --root="$R" \
    /usr/lib/systemd/system/pkio-agent.service
[[ ! -s $OUT && ! -s $ERR ]] || fail "systemd-analyze verify complains: $(cat "$OUT" "$ERR")"
expect_exit 0 -- systemd-analyze security --offline=yes --threshold=20 --root="$R" \
    /usr/lib/systemd/system/pkio-agent.service
exposure=$(sed -n 's/.*Overall exposure level for pkio-agent.service: \([0-9.]*\).*/\1/p' "$OUT")
[[ -n $exposure ]] || fail "no exposure level in: $(tail -n 3 "$OUT")"
pass "unit: systemd-analyze verify clean (man pages found), security exposure $exposure (<= 2.0)"

# The daily `pkio-agent expiring`: a oneshot service as the pkio-agent user, hardened, and its
# timer (daily, caught up after downtime, wanted by timers.target).
EXP=$X/usr/lib/systemd/system/pkio-agent-expiring.service
TIMER=$X/usr/lib/systemd/system/pkio-agent-expiring.timer
[[ $(sed -n 's/^ExecStart=//p' "$EXP") == "/usr/bin/pkio-agent expiring" ]] ||
    fail "expiring ExecStart is '$(sed -n 's/^ExecStart=//p' "$EXP")', expected /usr/bin/pkio-agent expiring"
for kv in Type=oneshot User=pkio-agent Group=pkio-officers StateDirectory=pkio-agent \
    ConfigurationDirectory=pkio-agent UMask=0077 NoNewPrivileges=yes ProtectSystem=strict \
    PrivateDevices=yes MemoryDenyWriteExecute=yes CapabilityBoundingSet= \
    SystemCallFilter=@system-service; do
    grep -qxF "$kv" "$EXP" || fail "expiring service lacks '$kv'"
done
grep -q '^ExecStart=\|^Environment=\|^SuccessExitStatus=' "$TIMER" && fail "the timer carries service settings"
for kv in OnCalendar=daily Persistent=yes WantedBy=timers.target; do
    grep -qxF "$kv" "$TIMER" || fail "timer lacks '$kv'"
done
MANPATH=$X/usr/share/man expect_exit 0 -- systemd-analyze verify --root="$R" \
    /usr/lib/systemd/system/pkio-agent-expiring.service /usr/lib/systemd/system/pkio-agent-expiring.timer
[[ ! -s $OUT && ! -s $ERR ]] || fail "systemd-analyze verify (expiring) complains: $(cat "$OUT" "$ERR")"
expect_exit 0 -- systemd-analyze security --offline=yes --threshold=20 --root="$R" \
    /usr/lib/systemd/system/pkio-agent-expiring.service
exp_exposure=$(sed -n 's/.*Overall exposure level for pkio-agent-expiring.service: \([0-9.]*\).*/\1/p' "$OUT")
[[ -n $exp_exposure ]] || fail "no exposure level for the expiring service in: $(tail -n 3 "$OUT")"
pass "expiring service and timer: verify clean, daily and persistent, security exposure $exp_exposure (<= 2.0)"

# No executable stack anywhere in the process (MemoryDenyWriteExecute would make the loader
# fail): the binary, its libraries, the engine and the PKCS#11 modules, with theirs.
engine=$(openssl version -e | sed -n 's/^ENGINESDIR: "\(.*\)"$/\1/p')/pkcs11.so
[[ -f $engine ]] || fail "pkcs11 engine not found at $engine (apt-get install libengine-pkcs11-openssl)"
elfs=("$X/usr/bin/pkio-agent" "$engine")
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
OPENSC_MODULE=/usr/lib/$multiarch/pkcs11/opensc-pkcs11.so
[[ -f $OPENSC_MODULE ]] || fail "$OPENSC_MODULE missing (apt-get install opensc-pkcs11)"
for mod in "$OPENSC_MODULE" /usr/lib/softhsm/libsofthsm2.so \
    "/usr/lib/$multiarch/pkcs11/libtpm2_pkcs11.so"; do
    [[ -f $mod ]] && elfs+=("$mod")
done
: >"$W/elfs.txt"
for e in "${elfs[@]}"; do
    echo "$e" >>"$W/elfs.txt"
    ldd "$e" | awk '$2 == "=>" && $3 ~ /^\// {print $3}' >>"$W/elfs.txt"
done
sort -u -o "$W/elfs.txt" "$W/elfs.txt"
while read -r e; do
    stack=$(readelf -lW "$e" | awk '$1 == "GNU_STACK" {print $7}')
    [[ -n $stack ]] || fail "$e has no GNU_STACK header (executable stack by default)"
    [[ $stack != *E* ]] || fail "$e wants an executable stack ($stack)"
done <"$W/elfs.txt"
pass "no executable stack in $(wc -l <"$W/elfs.txt") ELF files (binary, engine, modules, libraries)"

# At run time: keygen and a PSS CSR through the engine on SoftHSM2, and OpenSC's module,
# under strace. MemoryDenyWriteExecute refuses mmap with PROT_WRITE|PROT_EXEC and any
# mprotect that adds PROT_EXEC.
source "$PKIO_SRC/tests/lib/softhsm.sh"
softhsm_setup "$(pkio_tmpdir)"
A=$X/usr/bin/pkio-agent
traced()
{
    local name=$1
    shift
    expect_exit 0 -- strace -f -qq -e trace=mmap,mprotect,pkey_mprotect -o "$W/$name.strace" "$@"
}
traced keygen "$A" --module "$SOFTHSM_MODULE" keygen --token "$TOKEN_URI?pin-source=$TOKEN_PIN_FILE" \
    --key-type rsa:2048 --label wx --json
key_uri=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["uri"])' "$OUT")
traced csr "$A" --module "$SOFTHSM_MODULE" csr --key "$key_uri?pin-source=$TOKEN_PIN_FILE" \
    --subject "/CN=wx" --pss -o "$W/wx.csr"
openssl req -in "$W/wx.csr" -noout -verify >/dev/null 2>&1 || fail "the traced CSR does not verify"
traced opensc "$A" --module "$OPENSC_MODULE" tokens
for t in keygen csr opensc; do
    [[ -s $W/$t.strace ]] || fail "strace recorded nothing for $t"
    if grep -E 'mmap\(.*PROT_(WRITE\|PROT_EXEC|EXEC\|PROT_WRITE)|mprotect\(.*PROT_EXEC' \
        "$W/$t.strace"; then
        fail "$t maps memory writable and executable (above): MemoryDenyWriteExecute would break it"
    fi
done
pass "no W+X mapping while generating a key, signing a PSS CSR (engine) and loading OpenSC"

# The unit's Type=notify with NotifyAccess=main: the packaged `watch` must send READY=1 and
# STOPPING=1 itself from its main process, and exit 0 on SIGTERM (KillSignal). A listener
# stands in for systemd's notify socket and records each message's sender (SO_PASSCRED).
# strace -f covers the daemon's threads (PC/SC, udev, rescan) for W+X as above.
cat >"$W/notify.py" <<'EOF'
import os, socket, struct, sys
path, out = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind(path + ".tmp")
os.rename(path + ".tmp", path)
with open(out, "a", buffering=1) as f:
    while True:
        msg, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(12))
        pid = [struct.unpack("iII", d[:12])[0] for l, t, d in anc
               if l == socket.SOL_SOCKET and t == socket.SCM_CREDENTIALS]
        for line in msg.decode().splitlines():
            f.write("%s %s\n" % (pid[0] if pid else "?", line))
EOF
pkio_spawn notify python3 "$W/notify.py" "$W/notify.sock" "$W/notify.msgs"
pkio_wait_until 10 "the notify listener's socket" test -S "$W/notify.sock"
pkio_spawn watch env NOTIFY_SOCKET="$W/notify.sock" strace -f -qq \
    -e trace=mmap,mprotect,pkey_mprotect -o "$W/watch.strace" \
    "$A" --module "$SOFTHSM_MODULE" --state-dir "$(pkio_tmpdir)" watch --ignore "$TOKEN_SERIAL"
tracer=$PKIO_SPAWN_PID
pkio_wait_until 60 "READY=1 from pkio-agent watch" grep -q ' READY=1$' "$W/notify.msgs"
main=$(awk '$2 == "READY=1" {print $1; exit}' "$W/notify.msgs")
[[ $main =~ ^[0-9]+$ && $(ps -o ppid= -p "$main" | tr -d ' ') == "$tracer" ]] ||
    fail "READY=1 came from pid '$main', not from the main process (NotifyAccess=main)"
kill -TERM "$main"
rc=0
wait "$tracer" || rc=$?
[[ $rc -eq 0 ]] || fail "watch exited $rc on SIGTERM: $(tail -n 5 "$PKIO_ROOT/watch.log")"
grep -qx "$main STOPPING=1" "$W/notify.msgs" || fail "no STOPPING=1 from the main process"
if grep -E 'mmap\(.*PROT_(WRITE\|PROT_EXEC|EXEC\|PROT_WRITE)|mprotect\(.*PROT_EXEC' "$W/watch.strace"; then
    fail "watch maps memory writable and executable (above)"
fi
pass "watch: READY=1 and STOPPING=1 from the main process, exit 0 on SIGTERM, no W+X mapping"

# --- 3. install, remove, purge in an overlay chroot -----------------------------------------
host_before=$(dpkg-query -W -f='${db:Status-Abbrev}' pkio-agent 2>/dev/null || true)
host_var=$([[ -e /var/lib/pkio-agent ]] && echo present || echo absent)
unshare -m bash "${BASH_SOURCE[0]}" --in-overlay "$DEB" "$W/files.txt" ||
    fail "install/remove/purge in the overlay chroot failed (above)"
[[ $(dpkg-query -W -f='${db:Status-Abbrev}' pkio-agent 2>/dev/null || true) == "$host_before" ]] ||
    fail "the host's dpkg database changed"
[[ $([[ -e /var/lib/pkio-agent ]] && echo present || echo absent) == "$host_var" ]] ||
    fail "the host's /var/lib/pkio-agent changed"
pass "the host's dpkg database and /var/lib were not touched"

# --- 4. a build for /usr/local is not packaged -----------------------------------------------
# Configure only: cpack reads the generated project file before it builds or installs anything.
L=$W/build-local
expect_exit 0 -- cmake -S "$PKIO_SRC" -B "$L" -DPKIO_TESTS=OFF -DCMAKE_INSTALL_PREFIX=/usr/local
expect_exit nonzero -- cpack -G DEB -B "$W/pkg-local" --config "$L/CPackConfig.cmake"
grep -q "CMAKE_INSTALL_PREFIX=/usr" "$OUT" "$ERR" ||
    fail "cpack refused a /usr/local build without saying why: $(cat "$OUT" "$ERR")"
[[ -z $(find "$W/pkg-local" -name '*.deb' 2>/dev/null) ]] || fail "cpack made a .deb of a /usr/local build"
pass "cpack refuses a build for /usr/local (its binary would not find the packaged catalogs)"
