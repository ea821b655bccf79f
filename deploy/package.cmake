# The installed layout and the Debian package (CPack's DEB generator):
#   /usr/bin/outpost, its man page, README and copyright in /usr/share/doc/outpost,
#   /lib/systemd/system/outpost.service, /etc/outpost/outpost.yaml (a conffile),
#   the fleet's Prometheus rules in /usr/share/outpost/prometheus,
#   maintainer scripts that make the system user `outpost` and /var/lib/outpost.
# scripts/package builds the binary in build/ and runs cpack there.

# `cmake --install` and cpack install what is built, without building all
# the tests first: scripts/package builds the outpost target alone.
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY ON)

set(deploy_dir ${PROJECT_SOURCE_DIR}/deploy)
set(package_stage ${PROJECT_BINARY_DIR}/package)

# The example config as installed: every path in it exists on a fresh
# install (state_dir and the results file under /var/lib/outpost); the ASN
# table lines are commented out, since the table is not part of the package.
file(READ ${PROJECT_SOURCE_DIR}/config/example.yaml example_yaml)
string(REGEX REPLACE "\n(asn_table:|asn_names:)" "\n# \\1" example_yaml "${example_yaml}")
file(READ ${deploy_dir}/debian/outpost.yaml.head installed_head)
file(WRITE ${package_stage}/outpost.yaml "${installed_head}${example_yaml}")
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
  ${PROJECT_SOURCE_DIR}/config/example.yaml ${deploy_dir}/debian/outpost.yaml.head)

configure_file(${deploy_dir}/debian/changelog.in ${package_stage}/changelog @ONLY)

# Compressed as Debian wants them (gzip -n: no name or time stamp inside).
find_program(GZIP_PROGRAM gzip REQUIRED)
foreach(pair "${deploy_dir}/man/outpost.1;outpost.1.gz" "${package_stage}/changelog;changelog.gz")
  list(GET pair 0 source)
  list(GET pair 1 target)
  add_custom_command(OUTPUT ${package_stage}/${target}
    COMMAND ${GZIP_PROGRAM} -9nc ${source} > ${package_stage}/${target}
    DEPENDS ${source} VERBATIM)
  list(APPEND package_gz ${package_stage}/${target})
endforeach()
add_custom_target(package_docs ALL DEPENDS ${package_gz})
add_dependencies(outpost package_docs)

install(TARGETS outpost RUNTIME DESTINATION bin)
# The modules outpost loads from ../lib/outpost: the packet module
# (probes/tins_forge.hpp) and the metrics exposer (agent/metrics/metrics_exposer.hpp).
install(TARGETS outpost_tins outpost_metrics_module LIBRARY DESTINATION lib/outpost)
install(FILES ${package_stage}/outpost.1.gz DESTINATION share/man/man1)
install(FILES ${PROJECT_SOURCE_DIR}/README.md ${deploy_dir}/debian/copyright ${package_stage}/changelog.gz
  DESTINATION share/doc/outpost)
install(FILES ${deploy_dir}/systemd/outpost.service DESTINATION /lib/systemd/system)
install(FILES ${deploy_dir}/debian/lintian-overrides DESTINATION share/lintian/overrides RENAME outpost)
install(FILES ${package_stage}/outpost.yaml DESTINATION /etc/outpost)
# For the collector's host to load (or copy and tune): not a conffile, the agent never reads them.
install(FILES ${deploy_dir}/prometheus/outpost.rules.yml DESTINATION share/outpost/prometheus)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME outpost)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_PACKAGE_CONTACT "outpost maintainers <maintainers@users.noreply.r-seed-3ff61e5a.example>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "vantage-point probing agent for reachability and outages")
# CPack puts the summary first and indents these lines itself; an empty line
# becomes the " ." between paragraphs.
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
  "outpost probes the targets of its configuration (ICMP echo, TCP SYN or
connect, DNS) from one vantage point, sums up loss and latency over
windows, tells when a target, a group of targets or the vantage point
itself is down, takes traceroutes when an outage starts, and writes JSON
Lines records to files and to collectors (InfluxDB, Prometheus remote
write, HTTP, NATS JetStream).

The package installs a hardened systemd unit that runs the agent as the
system user outpost with CAP_NET_RAW alone. It is not enabled: edit
/etc/outpost/outpost.yaml, then run systemctl enable --now outpost.")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# libcurl, libnats and libsystemd are opened at run time
# (agent/loader/shared_library.hpp), so dpkg-shlibdeps cannot see them: their
# packages are named here, found from the libraries this build was made against.
set(outpost_dlopen_depends "")
foreach(lib CURL NATS SYSTEMD)
  file(REAL_PATH "${OUTPOST_${lib}_PATH}" real)
  execute_process(COMMAND dpkg-query -S "${real}" OUTPUT_VARIABLE owner RESULT_VARIABLE rc ERROR_QUIET)
  if(NOT rc EQUAL 0 OR NOT owner MATCHES "^([^:,]+)")
    message(FATAL_ERROR "no Debian package holds ${real} (for ${OUTPOST_${lib}_SONAME})")
  endif()
  string(APPEND outpost_dlopen_depends ", ${CMAKE_MATCH_1}")
endforeach()
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser${outpost_dlopen_depends}")
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${deploy_dir}/debian/conffiles ${deploy_dir}/debian/postinst ${deploy_dir}/debian/prerm
  ${deploy_dir}/debian/postrm)
include(CPack)
