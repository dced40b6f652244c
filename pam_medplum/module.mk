PAM_MODULE := $(O)/pam_medplum.so
PAM_SRCS := $(wildcard pam_medplum/*.c)
PAM_OBJS := $(patsubst %.c,$(O)/%.o,$(PAM_SRCS))

# Only pam_sm_* are exported (version script); everything else is hidden.
$(PAM_MODULE): $(PAM_OBJS) $(CORE_LIB) pam_medplum/pam_medplum.map
	$(CC) -shared -o $@ $(PAM_OBJS) $(CORE_LIB) $(ALL_LDFLAGS) $(SO_DEFS) \
		-Wl,--version-script=pam_medplum/pam_medplum.map $(CFLAGS) \
		$(CORE_LIBS) $(PAM_LIBS)

ALL_TARGETS += $(PAM_MODULE)

.PHONY: install-pam
install-pam: $(PAM_MODULE)
	install -d $(DESTDIR)$(PAMDIR)
	install -m 0644 $(PAM_MODULE) $(DESTDIR)$(PAMDIR)/pam_medplum.so
INSTALL_TARGETS += install-pam

# A test-only build of the same sources with -DMP_TESTING (a clock that the
# suites can shift, see pam_clock.h).  Built only for the test suites, never
# part of `all` or `install`.
PAM_TEST_MODULE := $(O)/testing/pam_medplum.so
PAM_TEST_OBJS := $(patsubst %.c,$(O)/testing/%.o,$(PAM_SRCS))

$(O)/testing/pam_medplum/%.o: pam_medplum/%.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -DMP_TESTING -MMD -MP -c -o $@ $<

$(PAM_TEST_MODULE): $(PAM_TEST_OBJS) $(CORE_LIB) pam_medplum/pam_medplum.map
	$(CC) -shared -o $@ $(PAM_TEST_OBJS) $(CORE_LIB) $(ALL_LDFLAGS) $(SO_DEFS) \
		-Wl,--version-script=pam_medplum/pam_medplum.map $(CFLAGS) \
		$(CORE_LIBS) $(PAM_LIBS)
