# The Debian package, made by CPack's DEB generator (docs/installing.md says why CPack and not
# debian/ with debhelper). Included after packaging/install.cmake, by the top-level
# CMakeLists.txt and by packaging/CMakeLists.txt (prebuilt binaries of a release).
#
#   scripts/build-deb.sh [BUILD_DIR]     -> BUILD_DIR/deb/baton_VERSION_ARCH.deb
#
# Version: the upstream version is schema/release.h's (PROJECT_VERSION). A build of the commit
# that RELEASES records for it is that version; any other commit is marked as such when the
# package is made (packaging/deb-version.cmake): VERSION+gitN.HASH after a released VERSION (N
# commits later), VERSION~gitN.HASH before VERSION is released, so dpkg orders builds between
# releases correctly. -DBATON_DEB_VERSION=V sets it outright (scripts/build-release.sh --deb).
set(BATON_DEB_VERSION "" CACHE STRING "Debian package version (default: from schema/release.h and git)")

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME baton)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "baton maintainers <maintainers@users.noreply.r-seed-69278bc5.example>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "process supervisor (Upstart-style jobs) with stateful re-exec")
set(CPACK_PACKAGE_DESCRIPTION "batond supervises the jobs described by Upstart-style job files in
/etc/baton/jobs, as PID 1 (an init) or as a subreaper; batonctl is its
client, in the manner of initctl. batond's whole state is one Cap'n Proto
schema, so it re-executes itself into a new binary without losing a job, a
child, a byte of log output or a waiting client: this package's postinst
re-execs a running batond into the binary it installed. baton-state reads,
checks and converts state snapshots offline.")
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Dependencies from the binaries themselves (dpkg-shlibdeps): batond is static, batonctl and
# baton-state need libc6, libstdc++6 and libgcc-s1.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_COMPRESSION_TYPE xz)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
# /etc/baton/jobs is an absolute destination: install it below the package's root as well.
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_PACKAGE_DIRECTORY ${CMAKE_BINARY_DIR}/deb)
set(CPACK_OUTPUT_FILE_PREFIX ${CMAKE_BINARY_DIR}/deb)
# Maintainer scripts and conffiles (packaging/deb/); they must be mode 0755/0644 in the package.
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
set(BATON_DEB_CONTROL_EXTRA)
foreach(f conffiles postinst prerm)
  set(out ${CMAKE_CURRENT_BINARY_DIR}/deb-control/${f})
  configure_file(${BATON_PACKAGING_DIR}/deb/${f} ${out} COPYONLY)
  list(APPEND BATON_DEB_CONTROL_EXTRA ${out})
endforeach()
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${BATON_DEB_CONTROL_EXTRA})

# Read by packaging/deb-version.cmake when cpack runs (CPACK_* variables travel to it).
set(CPACK_BATON_DEB_VERSION "${BATON_DEB_VERSION}")
set(CPACK_BATON_SOURCE_DIR "${BATON_VERSION_SOURCE}")
set(CPACK_PROJECT_CONFIG_FILE ${BATON_PACKAGING_DIR}/deb-version.cmake)
include(CPack)
