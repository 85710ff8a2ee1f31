# man/: one page per program and one for the job format.
dist_man_MANS += man/diffq.1 man/diffq-jobs.5 man/diffq-node.8
dist_man_MANS += man/diffq-broker.8
