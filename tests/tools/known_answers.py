#!/usr/bin/env python3
"""Known answers for tests/test_sim.c and tests/test_workloads.c, from an implementation
written separately from syncsim's C code: the stream mix of sim/sim_rng.h, mt19937 with its
reference seeding, GSL's uniform and uniform_int on it, and Marsaglia's polar method
(workloads/wl_rand.c). Run it to see where the pinned values come from."""
import math
def splitmix(x):
    M=(1<<64)-1
    x=(x+0x9e3779b97f4a7c15)&M
    x=((x^(x>>30))*0xbf58476d1ce4e5b9)&M
    x=((x^(x>>27))*0x94d049bb133111eb)&M
    return x^(x>>31)
def stream_seed(seed,purpose,worker):
    s=splitmix(splitmix(seed)^((purpose<<32)|worker))
    s32=(s>>32)^(s&0xffffffff)
    return s32 or 1
class MT:
    def __init__(self,seed):
        self.mt=[0]*624; self.mt[0]=seed&0xffffffff
        for i in range(1,624):
            self.mt[i]=(1812433253*(self.mt[i-1]^(self.mt[i-1]>>30))+i)&0xffffffff
        self.i=624
    def get(self):
        if self.i>=624:
            for k in range(624):
                y=(self.mt[k]&0x80000000)|(self.mt[(k+1)%624]&0x7fffffff)
                self.mt[k]=self.mt[(k+397)%624]^(y>>1)^(0x9908b0df if y&1 else 0)
            self.i=0
        y=self.mt[self.i]; self.i+=1
        y^=y>>11; y^=(y<<7)&0x9d2c5680; y^=(y<<15)&0xefc60000; y^=y>>18
        return y
    def uniform(self): return self.get()/4294967296.0
    def uniform_int(self,n):
        scale=0xffffffff//n
        while True:
            k=self.get()//scale
            if k<n: return k
    def gauss(self,sd):
        while True:
            x=2*self.uniform()-1; y=2*self.uniform()-1; s=x*x+y*y
            if s<1 and s!=0: break
        return sd*x*math.sqrt(-2*math.log(s)/s)
# the first draws of stream (seed 1, SIM_RNG_DATASET, worker 0)
r=MT(stream_seed(1,1,0))
print([r.get() for _ in range(3)])
# synthetic(4 train, 2 test, dim 3, classes 3, seed 1), separation 1: class means, then
# per example a uniform class and the mean plus N(0, 1) noise
r=MT(stream_seed(1,1,0))
D,C=3,3
means=[r.gauss(1.0) for _ in range(C*D)]
ys=[];xs=[]
for i in range(4):
    c=r.uniform_int(C); x=[means[c*D+j]+r.gauss(1.0) for j in range(D)]
    ys.append(c); xs.append(x)
print(ys, ["%.9g"%v for v in xs[0]])
