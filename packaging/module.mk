# packaging: man pages, the shipped configuration file, systemd units,
# tmpfiles.d, the pam-auth-update profile and the authselect profile; the
# Debian and RPM packaging; and their tests.
#
#   make check-man        man page lint + config key coverage (fast, no root)
#   make check-packaging  build the .debs, lintian, install/enable/remove/purge
#                         in a debootstrap chroot (root; ~1 min, ~35 s more the
#                         first time)
#   make check-rpm        build the RPM, rpmlint, compare its file list with the .debs
#   make deb              build the .debs into $(O)/packaging/debs
#   make rpm              build the RPM into $(O)/packaging/rpm

SYSTEMDUNITDIR ?= $(or $(shell $(PKG_CONFIG) --variable=systemdsystemunitdir systemd 2>/dev/null),/lib/systemd/system)
TMPFILESDIR ?= $(PREFIX)/lib/tmpfiles.d
PAMCONFIGSDIR ?= $(DATADIR)/pam-configs
AUTHSELECTDIR ?= $(DATADIR)/authselect/vendor/medplum

PKG_MAN5 := packaging/man/pam_medplum.conf.5
PKG_MAN8 := packaging/man/pam_medplum.8 packaging/man/nss_medplum.8 packaging/man/medplumctl.8
PKG_AUTHSELECT := $(wildcard packaging/authselect/medplum/*)

.PHONY: install-man install-conf install-systemd install-tmpfiles install-pamconfigs \
	install-authselect check-man check-packaging check-rpm deb rpm

install-man:
	install -d $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8
	install -m 0644 $(PKG_MAN5) $(DESTDIR)$(MANDIR)/man5/
	install -m 0644 $(PKG_MAN8) $(DESTDIR)$(MANDIR)/man8/

# Packages (DESTDIR set) always get the file; a direct install onto the
# running system never overwrites an existing configuration.
install-conf:
	install -d -m 0755 $(DESTDIR)$(SYSCONFDIR)/medplum
	@if [ -z "$(DESTDIR)" ] && [ -e $(CONFIG_FILE) ]; then \
		echo "keeping existing $(CONFIG_FILE)"; \
	else \
		echo "install -m 0600 packaging/conf/pam_medplum.conf $(DESTDIR)$(CONFIG_FILE)"; \
		install -m 0600 packaging/conf/pam_medplum.conf $(DESTDIR)$(CONFIG_FILE); \
	fi

install-systemd:
	install -d $(DESTDIR)$(SYSTEMDUNITDIR)
	install -m 0644 packaging/systemd/medplum-sync.service packaging/systemd/medplum-sync.timer \
		$(DESTDIR)$(SYSTEMDUNITDIR)/

install-tmpfiles:
	install -d $(DESTDIR)$(TMPFILESDIR)
	install -m 0644 packaging/tmpfiles/pam_medplum.conf $(DESTDIR)$(TMPFILESDIR)/pam_medplum.conf

install-pamconfigs:
	install -d $(DESTDIR)$(PAMCONFIGSDIR)
	install -m 0644 packaging/pam-configs/medplum $(DESTDIR)$(PAMCONFIGSDIR)/medplum

install-authselect:
	install -d $(DESTDIR)$(AUTHSELECTDIR)
	install -m 0644 $(PKG_AUTHSELECT) $(DESTDIR)$(AUTHSELECTDIR)/

INSTALL_TARGETS += install-man install-conf install-systemd install-tmpfiles \
	install-pamconfigs install-authselect

# ---- tests -----------------------------------------------------------------

# Prints the config key table of core/mp_config.c (key, default, description).
PKG_KEYDUMP := $(O)/packaging/mp_keydump
$(PKG_KEYDUMP): packaging/tests/mp_keydump.c $(CORE_LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(CORE_LIB) $(ALL_LDFLAGS) $(CORE_LIBS)

check-man: $(PKG_KEYDUMP)
	@O=$(O) KEYDUMP=$(PKG_KEYDUMP) packaging/tests/check-man.sh

deb:
	packaging/build-deb.sh $(O)/packaging/debs

rpm:
	packaging/build-rpm.sh $(O)/packaging/rpm

check-packaging:
	@O=$(O) packaging/tests/check-packaging.sh

check-rpm:
	@O=$(O) packaging/tests/check-rpm.sh

CHECK_SUITES += check-man check-packaging check-rpm
