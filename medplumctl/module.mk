# medplumctl: the root CLI (sync, status, check-config, test-login, cache).
#
#   make check-sync        cmocka unit tests of the mapping + sync against the test server
#   make check-medplumctl  every medplumctl command against the test server
#   make check-medplumctl-valgrind  both suites with medplumctl under valgrind

MEDPLUMCTL := $(O)/medplumctl
MEDPLUMCTL_SRCS := $(wildcard medplumctl/*.c)
# Objects go to $(O)/medplumctl-obj/: $(O)/medplumctl is the binary itself.
MEDPLUMCTL_OBJS := $(patsubst medplumctl/%.c,$(O)/medplumctl-obj/%.o,$(MEDPLUMCTL_SRCS))

$(O)/medplumctl-obj/%.o: medplumctl/%.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

# (An object directory of that name from an early build is removed first.)
$(MEDPLUMCTL): $(MEDPLUMCTL_OBJS) $(CORE_LIB)
	@if [ -d $@ ]; then rm -rf $@; fi
	$(CC) -o $@ $(MEDPLUMCTL_OBJS) $(CORE_LIB) $(ALL_LDFLAGS) -pie $(CFLAGS) $(CORE_LIBS)

ALL_TARGETS += $(MEDPLUMCTL)

.PHONY: install-medplumctl
install-medplumctl: $(MEDPLUMCTL)
	install -d $(DESTDIR)$(SBINDIR)
	install -m 0755 $(MEDPLUMCTL) $(DESTDIR)$(SBINDIR)/medplumctl
INSTALL_TARGETS += install-medplumctl

# ---- tests -----------------------------------------------------------------

SYNC_UNIT_TESTS := $(patsubst tests/sync/%.c,$(O)/tests/sync/%,$(wildcard tests/sync/test_*.c))

$(O)/tests/sync/%: $(O)/tests/sync/%.o $(CORE_LIB)
	$(CC) -o $@ $< $(CORE_LIB) $(ALL_LDFLAGS) $(CFLAGS) $(CMOCKA_LIBS) $(CORE_LIBS)

ALL_TARGETS += $(SYNC_UNIT_TESTS)

PYTHON ?= python3

.PHONY: check-sync check-medplumctl check-medplumctl-valgrind
check-sync: $(SYNC_UNIT_TESTS) $(MEDPLUMCTL)
	@rc=0; for t in $(SYNC_UNIT_TESTS); do $$t || rc=1; done; \
	MP_BUILD=$(abspath $(O)) $(PYTHON) tests/sync/test_sync.py || rc=1; exit $$rc

check-medplumctl: $(MEDPLUMCTL)
	MP_BUILD=$(abspath $(O)) $(PYTHON) tests/medplumctl/test_medplumctl.py

# Both integration suites with medplumctl under valgrind (memory errors and
# definite leaks fail the command).
check-medplumctl-valgrind: $(MEDPLUMCTL)
	@rc=0; MP_BUILD=$(abspath $(O)) MP_VALGRIND=1 $(PYTHON) tests/sync/test_sync.py || rc=1; \
	MP_BUILD=$(abspath $(O)) MP_VALGRIND=1 $(PYTHON) tests/medplumctl/test_medplumctl.py || rc=1; \
	exit $$rc

CHECK_SUITES += check-sync check-medplumctl check-medplumctl-valgrind
