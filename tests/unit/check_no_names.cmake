# Asserts that BINARY contains none (or, with EXPECT_PRESENT, all) of the point names of disabled_build.c.
file(READ ${BINARY} content HEX)
set(names zq_compiled_out_sleep zq_compiled_out_exception zq_compiled_out_lambda zq_compiled_out_handler
    zq_compiled_out_wait zq_compiled_out_enter zq_compiled_out_runtime)
foreach(name ${names})
  string(HEX ${name} hex)
  string(FIND "${content}" "${hex}" at)
  if(EXPECT_PRESENT AND at EQUAL -1)
    message(FATAL_ERROR "${BINARY} should contain the point name ${name}")
  elseif(NOT EXPECT_PRESENT AND NOT at EQUAL -1)
    message(FATAL_ERROR "${BINARY} contains the point name ${name} although built with ERRINJ_DISABLE")
  endif()
endforeach()
message(STATUS "checked ${BINARY}")
