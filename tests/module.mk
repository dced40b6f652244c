# Unit tests (cmocka, no libpam, no network) and the PAM integration tests.

UNIT_TESTS := $(patsubst tests/unit/%.c,$(O)/tests/unit/%,$(wildcard tests/unit/test_*.c))

$(O)/tests/unit/%: $(O)/tests/unit/%.o $(CORE_LIB)
	$(CC) -o $@ $< $(CORE_LIB) $(ALL_LDFLAGS) $(CFLAGS) $(CMOCKA_LIBS) $(CORE_LIBS)

.PHONY: check-unit
check-unit: $(UNIT_TESTS)
	@rc=0; for t in $(UNIT_TESTS); do $$t || rc=1; done; exit $$rc

CHECK_SUITES += check-unit
ALL_TARGETS += $(UNIT_TESTS)

# PAM integration: the real module through libpam (pam_wrapper + pamtester)
# against the test server over HTTPS, for both server variants.
PYTHON ?= python3

.PHONY: check-pam check-pam-newest demo
check-pam: $(PAM_MODULE)
	MP_BUILD=$(abspath $(O)) $(PYTHON) tests/pam/test_pam_auth.py --variant 5.0.10

check-pam-newest: $(PAM_MODULE)
	MP_BUILD=$(abspath $(O)) $(PYTHON) tests/pam/test_pam_auth.py --variant newest

CHECK_SUITES += check-pam check-pam-newest

demo: deps-demo
	@$(MAKE) --no-print-directory -s $(PAM_MODULE)
	@MP_BUILD=$(abspath $(O)) $(PYTHON) tests/demo.py

# The same suites under AddressSanitizer/UndefinedBehaviorSanitizer (a
# separate build in $(ASAN_O); the sanitizer runtime must come first in
# LD_PRELOAD, before pam_wrapper) and under valgrind.
ASAN_O ?= build-asan
ASAN_RUNTIME = $(shell $(CC) -print-file-name=libasan.so)

.PHONY: asan-build check-unit-asan check-pam-asan check-pam-valgrind
asan-build:
	@$(MAKE) --no-print-directory SANITIZE=address,undefined O=$(ASAN_O) \
		$(ASAN_O)/pam_medplum.so $(patsubst $(O)/%,$(ASAN_O)/%,$(UNIT_TESTS)) >/dev/null

check-unit-asan: asan-build
	@rc=0; for t in $(patsubst $(O)/%,$(ASAN_O)/%,$(UNIT_TESTS)); do $$t || rc=1; done; exit $$rc

# LeakSanitizer is off inside pamtester: with glibc 2.36, gcc 12's LSan
# misreads the dynamic TLS of dlopen'ed PAM modules ("Tracer caught signal
# 11", a bogus DTLS range) and aborts at random.  Leaks are what the valgrind
# run of the same suite checks (--leak-check=full, definite leaks fail), and
# LSan stays on for the unit tests.
check-pam-asan: asan-build
	ASAN_OPTIONS=detect_leaks=0 MP_BUILD=$(abspath $(ASAN_O)) MP_PRELOAD=$(ASAN_RUNTIME) \
		$(PYTHON) tests/pam/test_pam_auth.py

check-pam-valgrind: $(PAM_MODULE)
	MP_BUILD=$(abspath $(O)) MP_VALGRIND=1 $(PYTHON) tests/pam/test_pam_auth.py

CHECK_SUITES += check-unit-asan check-pam-asan check-pam-valgrind

.PHONY: check-static
check-static:
	@tests/static_checks.sh

CHECK_SUITES += check-static

# Mutants: each breaks one protective behaviour in a copy of the tree; the
# guarding tests must fail against it (shows the negative tests can fail).
.PHONY: check-mutation
check-mutation:
	@$(PYTHON) tests/mutation/mutants.py

CHECK_SUITES += check-mutation

# ---- issue 4: account phase, offline login, backoff, password change -------
# These suites run the MP_TESTING build of the module (pam_medplum/module.mk)
# so they can move its clock; state_tool writes/reads mp_state like
# medplumctl does.
PAM_STATE_TOOL := $(O)/tests/pam/state_tool

$(PAM_STATE_TOOL): tests/pam/state_tool.c $(CORE_LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(CORE_LIB) $(ALL_LDFLAGS) $(CORE_LIBS)

# A test-only PAM module standing in for pam_pwquality / pam_unix use_authtok
# around pam_medplum in password stacks (tests/pam/pam_authtok_probe.c).
PAM_AUTHTOK_PROBE := $(O)/tests/pam/pam_authtok_probe.so

$(PAM_AUTHTOK_PROBE): tests/pam/pam_authtok_probe.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -shared -o $@ $< $(ALL_LDFLAGS) $(PAM_LIBS)

PAM_ISSUE4_DEPS := $(PAM_MODULE) $(PAM_TEST_MODULE) $(PAM_STATE_TOOL) $(PAM_AUTHTOK_PROBE)

.PHONY: check-pam-account check-pam-offline check-pam-password
check-pam-account: $(PAM_ISSUE4_DEPS)
	MP_BUILD=$(abspath $(O)) $(PYTHON) tests/pam/test_pam_account.py

check-pam-offline: $(PAM_ISSUE4_DEPS)
	MP_BUILD=$(abspath $(O)) $(PYTHON) tests/pam/test_pam_offline.py

check-pam-password: $(PAM_ISSUE4_DEPS)
	MP_BUILD=$(abspath $(O)) $(PYTHON) tests/pam/test_pam_password.py

CHECK_SUITES += check-pam-account

# The test server's fidelity: replay of the recorded Medplum 5.0.10
# exchanges, and the server's own self-test (faults, control port, certs).
.PHONY: check-conformance check-server
check-conformance:
	@$(PYTHON) tests/conformance/test_conformance.py

check-server:
	@$(PYTHON) tests/server/test_server.py

CHECK_SUITES += check-server check-conformance

# Time-bounded libFuzzer runs of the parsers that see untrusted input.
.PHONY: check-fuzz
check-fuzz:
	@O=$(O) FUZZ_SECONDS=$${FUZZ_SECONDS:-10} tests/fuzz/run_fuzzers.sh

CHECK_SUITES += check-fuzz

# ---- issue 6: end to end (root) ----------------------------------------------
# The real sshd, su and login with the real libpam and glibc NSS, in a private
# mount namespace (tests/e2e/).  medplumctl (cache sync) and mkcache (fallback
# cache writer) are built when they can be; the suite names what it had to skip
# without them.
.PHONY: check-e2e
check-e2e: $(PAM_MODULE) $(NSS_MODULE)
	-@$(MAKE) --no-print-directory -s $(MEDPLUMCTL) $(MKCACHE) >/dev/null 2>&1
	@MP_BUILD=$(abspath $(O)) $(PYTHON) tests/e2e/test_e2e.py

CHECK_SUITES += check-e2e

# issue 4: offline login and backoff suite (target defined above)
CHECK_SUITES += check-pam-offline

# issue 4: password change suite (target defined above)
CHECK_SUITES += check-pam-password
