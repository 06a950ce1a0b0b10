// CONTRACT STUB: the CNI helper replaces this.
return 1;
