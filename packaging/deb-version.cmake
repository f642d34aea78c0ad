# CPack project config: the package version, decided when cpack runs (so a commit made after
# the last configure still gets its own version). See packaging/cpack.cmake.
if(CPACK_BATON_DEB_VERSION)
  set(v "${CPACK_BATON_DEB_VERSION}")
else()
  set(v "${CPACK_PACKAGE_VERSION}")
  if(CPACK_BATON_SOURCE_DIR AND EXISTS "${CPACK_BATON_SOURCE_DIR}/RELEASES")
    execute_process(COMMAND git -C "${CPACK_BATON_SOURCE_DIR}" rev-parse HEAD
                    OUTPUT_VARIABLE head OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE rc ERROR_QUIET)
    if(rc EQUAL 0)
      file(STRINGS "${CPACK_BATON_SOURCE_DIR}/RELEASES" line REGEX "^${CPACK_PACKAGE_VERSION}[ \t]")
      string(REGEX REPLACE "^[^ \t]+[ \t]+[^ \t]+[ \t]+([0-9a-f]+).*" "\\1" released "${line}")
      string(SUBSTRING "${head}" 0 7 short)
      if(line AND released STREQUAL head)
        # this is the release itself
      elseif(line)
        execute_process(COMMAND git -C "${CPACK_BATON_SOURCE_DIR}" rev-list --count ${released}..HEAD
                        OUTPUT_VARIABLE n OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
        set(v "${v}+git${n}.${short}")
      else()
        execute_process(COMMAND git -C "${CPACK_BATON_SOURCE_DIR}" rev-list --count HEAD
                        OUTPUT_VARIABLE n OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
        set(v "${v}~git${n}.${short}")
      endif()
    endif()
  endif()
endif()
set(CPACK_PACKAGE_VERSION "${v}")
set(CPACK_DEBIAN_PACKAGE_VERSION "${v}")
