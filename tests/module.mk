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

demo: deps
	@$(MAKE) --no-print-directory $(PAM_MODULE)
	@MP_BUILD=$(abspath $(O)) $(PYTHON) tests/demo.py
