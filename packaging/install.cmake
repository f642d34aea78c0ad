# Install rules: the programs, the job directory with its README, man pages and the docs.
# Included by the top-level CMakeLists.txt (the programs are its targets) and by
# packaging/CMakeLists.txt, which packages prebuilt binaries of a release (BATON_PREBUILT_DIR).
#
# Layout (GNUInstallDirs, prefix /usr in a package):
#   sbin/batond, sbin/batonctl, sbin/baton-state   system administration programs: batond is an
#       init (/sbin/init's neighbour); batonctl is initctl's counterpart, and like initctl it
#       lives in sbin: whatever changes the system needs root, and a non-root user only queries
#       (through --socket /run/baton/control, or a batond of their own); baton-state reads
#       snapshots, which batond writes mode 0600.
#   /etc/baton/jobs/README   batond's default --confdir (compiled in, so not under the prefix)
#   share/man/man8/*.8.gz, share/doc/baton/ (README, CHANGELOG, docs/, examples/jobs/)
include(GNUInstallDirs)
set(BATON_PACKAGING_DIR ${CMAKE_CURRENT_LIST_DIR})
set(BATON_CONFDIR /etc/baton/jobs CACHE PATH "Job directory installed (batond's default --confdir)")
set(BATON_DOC_SOURCE ${CMAKE_CURRENT_LIST_DIR}/.. CACHE PATH
    "Tree whose README.md, CHANGELOG.md, docs/ and examples/jobs/ are installed")

if(BATON_PREBUILT_DIR)
  set(BATON_PROGRAMS batond batonctl)
  if(EXISTS ${BATON_PREBUILT_DIR}/baton-state)  # 0.1.0 has no baton-state
    list(APPEND BATON_PROGRAMS baton-state)
  endif()
  foreach(p IN LISTS BATON_PROGRAMS)
    if(NOT EXISTS ${BATON_PREBUILT_DIR}/${p})
      message(FATAL_ERROR "BATON_PREBUILT_DIR=${BATON_PREBUILT_DIR} has no ${p}")
    endif()
    install(PROGRAMS ${BATON_PREBUILT_DIR}/${p} DESTINATION ${CMAKE_INSTALL_SBINDIR})
  endforeach()
else()
  set(BATON_PROGRAMS batond batonctl baton-state)
  install(TARGETS ${BATON_PROGRAMS} RUNTIME DESTINATION ${CMAKE_INSTALL_SBINDIR})
endif()

install(FILES ${BATON_PACKAGING_DIR}/jobs-README DESTINATION ${BATON_CONFDIR} RENAME README)

# Man pages, compressed as Debian wants them (gzip -9n: no name or time stamp, reproducible).
# Made at configure time; editing a page re-runs the configuration.
set(BATON_MAN_OUT ${CMAKE_CURRENT_BINARY_DIR}/man)
file(MAKE_DIRECTORY ${BATON_MAN_OUT})
foreach(p IN LISTS BATON_PROGRAMS)
  set(page ${BATON_PACKAGING_DIR}/man/${p}.8)
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${page})
  execute_process(COMMAND gzip -9n -c ${page} OUTPUT_FILE ${BATON_MAN_OUT}/${p}.8.gz RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "cannot compress ${page}")
  endif()
  install(FILES ${BATON_MAN_OUT}/${p}.8.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)
endforeach()

foreach(f README.md CHANGELOG.md)
  if(EXISTS ${BATON_DOC_SOURCE}/${f})
    install(FILES ${BATON_DOC_SOURCE}/${f} DESTINATION ${CMAKE_INSTALL_DOCDIR})
  endif()
endforeach()
if(IS_DIRECTORY ${BATON_DOC_SOURCE}/docs)
  install(DIRECTORY ${BATON_DOC_SOURCE}/docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/docs FILES_MATCHING PATTERN "*.md")
endif()
if(IS_DIRECTORY ${BATON_DOC_SOURCE}/examples/jobs)
  install(DIRECTORY ${BATON_DOC_SOURCE}/examples/jobs/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples/jobs)
endif()
