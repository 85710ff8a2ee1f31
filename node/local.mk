# node/: diffq-node, one daemon per machine running one rank per GPU (issue: the cluster queue).
