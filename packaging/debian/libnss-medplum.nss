# dh_installnss: add "medplum" right after "files" on the passwd and group
# lines when the package is installed, remove it when the package is
# removed (as libnss-systemd does for "systemd").
passwd after=files medplum
group  after=files medplum
