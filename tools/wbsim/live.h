/* wbsim live: a generated session sent through a DPDK port, with a MoldUDP64 re-request
 * server answering on the same port (docs/wbsim.md). */
#ifndef WB_SIM_LIVE_H
#define WB_SIM_LIVE_H

int wb_sim_live_main(int argc, char **argv);

#endif
